-- Read the run's current state in one consistent view.
--
-- ARGV[1] incarnation ('' to accept any)
-- ARGV[2] '1' to add what is shown only (keys.py: ranks, last_step), '0' not to
--
-- Returns {OK, version, weights_version, weights, stats, rewards, state, state_version,
-- journal}, then with ARGV[2] = '1' {ranks as HGETALL, last_step or ''}; or check_run's
-- refusal (_common.lua).

local status = check_run(ARGV[1])
if status ~= OK then return {status} end
local meta = redis.call('HMGET', KEYS[1], 'version', 'weights_version', 'weights')
local state, state_version, journal = strategy_inputs()
local reply = {OK, tonumber(meta[1]), tonumber(meta[2]), meta[3],
               redis.call('GET', KEYS[2]), redis.call('GET', KEYS[3]),
               state, state_version, journal}
if ARGV[2] == '1' then
  reply[10] = redis.call('HGETALL', KEYS[11])
  reply[11] = redis.call('GET', KEYS[12]) or ''
end
return reply
