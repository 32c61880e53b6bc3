-- Read everything a snapshot holds, in one consistent view.
--
-- ARGV[1] incarnation           ARGV[2] '1' to include the history, '0' to leave it out
--
-- Returns {OK, version, stats, rewards, windows (the rings' string: K rings, or fewer),
--          report ids (flat member/score list, oldest first), history entries,
--          state, state_version, journal, prompt records, prompt_dists} (the last two ''
--          in a run without prompts), or check_run's refusal (_common.lua).

local status = check_run(ARGV[1])
if status ~= OK then return {status} end
local state, state_version, journal = strategy_inputs()
return {OK, tonumber(redis.call('HGET', KEYS[1], 'version')),
        redis.call('GET', KEYS[2]), redis.call('GET', KEYS[3]),
        redis.call('GET', KEYS[4]) or '',
        redis.call('ZRANGE', KEYS[5], 0, -1, 'WITHSCORES'),
        ARGV[2] == '1' and redis.call('LRANGE', KEYS[8], 0, -1) or {},
        state, state_version, journal,
        redis.call('GET', KEYS[13]) or '', redis.call('GET', KEYS[14]) or ''}
