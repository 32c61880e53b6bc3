-- Read the run's current state in one consistent view.
--
-- ARGV[1] incarnation ('' to accept any)
--
-- Returns {0, version, weights_version, weights, stats, rewards, state, state_version,
-- journal}, or {-1} / {-2}.

local status = check_run(ARGV[1])
if status ~= 0 then return {status} end
local meta = redis.call('HMGET', KEYS[1], 'version', 'weights_version', 'weights')
local state, state_version, journal = strategy_inputs()
return {0, tonumber(meta[1]), tonumber(meta[2]), meta[3],
        redis.call('GET', KEYS[2]), redis.call('GET', KEYS[3]),
        state, state_version, journal}
