-- Read the run's current state in one consistent view.
--
-- ARGV[1] incarnation ('' to accept any)
--
-- Returns {OK, version, weights_version, weights, stats, rewards, state, state_version,
-- journal}, or check_run's refusal (_common.lua).

local status = check_run(ARGV[1])
if status ~= OK then return {status} end
local meta = redis.call('HMGET', KEYS[1], 'version', 'weights_version', 'weights')
local state, state_version, journal = strategy_inputs()
return {OK, tonumber(meta[1]), tonumber(meta[2]), meta[3],
        redis.call('GET', KEYS[2]), redis.call('GET', KEYS[3]),
        state, state_version, journal}
