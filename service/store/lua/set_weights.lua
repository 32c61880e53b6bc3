-- Store weights (and the strategy state) computed from the run at `version`, unless newer
-- ones are stored already (concurrent reports finish in any order; the newest version
-- wins), record them as the history entry of their step, and trim the journal entries the
-- new state covers.
--
-- ARGV[1] incarnation           ARGV[2] version the weights were computed from
-- ARGV[3] weights, packed float64 (K,)
-- ARGV[4] step of the report ('' for none: no history entry)
-- ARGV[5] history entry (header <f8 step, f8 version>, then float32 weights and means)
-- ARGV[6] how many history entries to keep
-- ARGV[7] the strategy state at `version`, packed float64 ('' for a stateless strategy)
--
-- Returns {OK} when stored, {EXISTS} when newer weights were there, or check_run's refusal
-- (_common.lua).

local status = check_run(ARGV[1])
if status ~= OK then return {status} end
local version = tonumber(ARGV[2])
local stored = tonumber(redis.call('HGET', KEYS[1], 'weights_version'))
if version <= stored then return {EXISTS} end
redis.call('HSET', KEYS[1], 'weights', ARGV[3], 'weights_version', version)
if ARGV[7] ~= '' and version > tonumber(redis.call('HGET', KEYS[1], 'state_version')) then
  redis.call('SET', KEYS[9], ARGV[7])
  redis.call('HSET', KEYS[1], 'state_version', version)
  -- entries are in version order: drop the prefix this state covers
  local covered = 0
  for _, entry in ipairs(redis.call('LRANGE', KEYS[10], 0, -1)) do
    if struct.unpack('<d', entry) > version then break end
    covered = covered + 1
  end
  if covered > 0 then redis.call('LTRIM', KEYS[10], covered, -1) end
end
if ARGV[4] ~= '' then
  -- meta.history_step: the step of the newest entry (read there, not from the entry, which
  -- holds K numbers)
  local last = redis.call('HGET', KEYS[1], 'history_step')
  if last and tonumber(last) == tonumber(ARGV[4]) and redis.call('LLEN', KEYS[8]) > 0 then
    redis.call('LSET', KEYS[8], -1, ARGV[5])
  else
    redis.call('RPUSH', KEYS[8], ARGV[5])
    redis.call('LTRIM', KEYS[8], -tonumber(ARGV[6]), -1)
    redis.call('HSET', KEYS[1], 'history_step', ARGV[4])
  end
end
return {OK}
