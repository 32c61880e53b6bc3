-- Replace a run's learnt state with a snapshot's, keeping its config and token. The version
-- moves on from the current one (answers never go backwards); plans are dropped.
--
-- ARGV[1] incarnation
-- ARGV[2] stats, the string of keys.py (K records)
-- ARGV[3] rewards, packed float64 (K, 4)   ARGV[4] weights, packed float64 (K,)
-- ARGV[5] windows, the rings' string of keys.py ('' for none)
-- ARGV[6] R, report ids         ARGV[7] H, history entries
-- ARGV[8] strategy state, packed float64
-- then R pairs (score, report id), H history entries
--
-- Returns {OK, new version}, or check_run's refusal (_common.lua).

local status = check_run(ARGV[1])
if status ~= OK then return {status} end

local n_reports = tonumber(ARGV[6])
local n_history = tonumber(ARGV[7])
local version = redis.call('HINCRBY', KEYS[1], 'version', 1)
redis.call('HSET', KEYS[1], 'weights', ARGV[4], 'weights_version', version, 'plan_max_step', -1,
  'state_version', version)
delete_state()
redis.call('SET', KEYS[9], ARGV[8])
redis.call('SET', KEYS[2], ARGV[2])
redis.call('SET', KEYS[3], ARGV[3])
if ARGV[5] ~= '' then redis.call('SET', KEYS[4], ARGV[5]) end

local pos = 9
local function take(count)
  local items = {}
  for i = 1, count do items[i] = ARGV[pos + i - 1] end
  pos = pos + count
  return items
end
local reports = take(2 * n_reports)
local history = take(n_history)
if #reports > 0 then call_chunked('ZADD', KEYS[5], reports) end
if #history > 0 then
  call_chunked('RPUSH', KEYS[8], history)
  local last_step = struct.unpack('<d', history[#history])
  redis.call('HSET', KEYS[1], 'history_step', last_step)
else
  redis.call('HDEL', KEYS[1], 'history_step')
end
return {OK, version}
