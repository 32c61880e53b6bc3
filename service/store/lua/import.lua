-- Replace a run's learnt state with a snapshot's, keeping its config and token. The version
-- moves on from the current one (answers never go backwards); plans are dropped.
--
-- ARGV[1] incarnation           ARGV[2] n, packed float64 (K,)
-- ARGV[3] mean, packed float64 (K,)   ARGV[4] rewards, packed float64 (K, 4)
-- ARGV[5] weights, packed float64 (K,)   ARGV[9] strategy state, packed float64
-- ARGV[6] W, window entries     ARGV[7] R, report ids     ARGV[8] H, history entries
-- then W pairs (field, window blob), R pairs (score, report id), H history entries
--
-- Returns {0, new version}, or {-1} / {-2}.

local status = check_run(ARGV[1])
if status ~= 0 then return {status} end

local n_windows = tonumber(ARGV[6])
local n_reports = tonumber(ARGV[7])
local n_history = tonumber(ARGV[8])
local version = redis.call('HINCRBY', KEYS[1], 'version', 1)
redis.call('HSET', KEYS[1], 'weights', ARGV[5], 'weights_version', version, 'plan_max_step', -1,
  'state_version', version)
delete_state()
redis.call('SET', KEYS[10], ARGV[9])
redis.call('SET', KEYS[2], ARGV[2])
redis.call('SET', KEYS[3], ARGV[3])
redis.call('SET', KEYS[4], ARGV[4])

local pos = 10
local function take(count)
  local items = {}
  for i = 1, count do items[i] = ARGV[pos + i - 1] end
  pos = pos + count
  return items
end
local windows = take(2 * n_windows)
local reports = take(2 * n_reports)
local history = take(n_history)
if #windows > 0 then call_chunked('HSET', KEYS[5], windows) end
if #reports > 0 then call_chunked('ZADD', KEYS[6], reports) end
if #history > 0 then call_chunked('RPUSH', KEYS[9], history) end
return {0, version}
