-- Replace a run's learnt state with a snapshot's, keeping its config and token. The version
-- moves on from the current one (answers never go backwards); plans are dropped.
--
-- ARGV[1] incarnation
-- ARGV[2] stats, the string of keys.py (K records)
-- ARGV[3] rewards, packed float64 (K, 4)   ARGV[4] weights, packed float64 (K,)
-- ARGV[5] windows, the rings' string of keys.py ('' for none)
-- ARGV[6] R, report ids         ARGV[7] H, history entries
-- ARGV[8] strategy state, packed float64
-- ARGV[9] prompt records (keys.py: prompts)   ARGV[10] prompt_dists ('' for both: no prompts)
-- then R pairs (score: the version the report produced, report id), H history entries
--
-- Every argument is checked before the first write: Redis does not roll a script back, so
-- an error half-way (a score ZADD cannot read, a short history entry) would leave the run
-- half-imported. A report id is any string to Redis; the service checked its form.
--
-- Returns {OK, new version}, {INVALID, what is wrong} (nothing changed), or check_run's
-- refusal (_common.lua).

local status = check_run(ARGV[1])
if status ~= OK then return {status} end

local MAX_COUNT = 9007199254740992 -- 2^53: every integer up to it is exact in a float64
local function is_count(value)
  return value ~= nil and value >= 0 and value <= MAX_COUNT and value == math.floor(value)
end

local k = #(redis.call('HGET', KEYS[1], 'weights') or '') / 8
local n_reports = tonumber(ARGV[6])
local n_history = tonumber(ARGV[7])
if not (is_count(n_reports) and is_count(n_history))
    or #ARGV ~= 10 + 2 * n_reports + n_history then
  return {INVALID, 'the snapshot: the counts of report ids and history entries do not match '
    .. 'the arguments'}
end
if #ARGV[2] ~= 32 * k or #ARGV[3] ~= 32 * k or #ARGV[4] ~= 8 * k or #ARGV[8] % 8 ~= 0
    or #ARGV[5] % (4 * k) ~= 0 then
  return {INVALID, 'the snapshot: statistics, rewards, weights or windows of another '
    .. 'number of distributions than the run has (' .. k .. ')'}
end
for i = 11, 10 + 2 * n_reports, 2 do
  if not is_count(tonumber(ARGV[i])) then
    return {INVALID, 'the snapshot: a report id\'s version is not an integer from 0 to 2^53'}
  end
end
for i = 11 + 2 * n_reports, #ARGV do
  if #ARGV[i] ~= 16 + 8 * k then
    return {INVALID, 'the snapshot: a history entry of another number of distributions '
      .. 'than the run has (' .. k .. ')'}
  end
end

local version = redis.call('HINCRBY', KEYS[1], 'version', 1)
redis.call('HSET', KEYS[1], 'weights', ARGV[4], 'weights_version', version, 'plan_max_step', -1,
  'state_version', version)
delete_state()
redis.call('SET', KEYS[9], ARGV[8])
redis.call('SET', KEYS[2], ARGV[2])
redis.call('SET', KEYS[3], ARGV[3])
if ARGV[5] ~= '' then redis.call('SET', KEYS[4], ARGV[5]) end
if ARGV[10] ~= '' then
  redis.call('SET', KEYS[13], ARGV[9])
  redis.call('SET', KEYS[14], ARGV[10])
  redis.call('HINCRBY', KEYS[1], 'prompt_version', 1)
end

local pos = 11
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
