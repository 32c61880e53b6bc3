-- Apply one report: push absolute advantages into the windows, add to the counts, update the
-- reward statistics, bump the version and remember the report id. All or nothing.
--
-- ARGV[1] incarnation           ARGV[2] report id
-- ARGV[3] window W              ARGV[4] how many report ids to remember
-- ARGV[5] reward moving-average weight (0 < alpha <= 1)
-- ARGV[6] A, advantage entries  ARGV[7] R, reward entries
-- ARGV[8] journal entry body for a stateful strategy ('' for a stateless one)
-- ARGV[9] '1' to return the rewards array (a strategy that reads it), '0' for '' instead
-- then A triples: distribution index, sample count, the last min(count, W) absolute
--   advantages packed float32 (oldest first)
-- then R triples: distribution index, reward count, mean reward of this report
--
-- Returns, read after the write, for the caller to compute the new weights:
--   {0, version, n, mean, rewards, state, state_version, journal} when applied,
--   {1, version, n, mean, rewards, state, state_version, journal, weights_version, weights}
--   for a report id seen before (nothing changed); or {-1} / {-2}.
-- n and mean are packed float64 (K,), rewards (K, 4); journal is a list of entries.

local status = check_run(ARGV[1])
if status ~= 0 then return {status} end

local function reply(status, version)
  local state, state_version, journal = strategy_inputs()
  local rewards = ''
  if ARGV[9] == '1' then rewards = redis.call('GET', KEYS[4]) end
  local out = {status, version, redis.call('GET', KEYS[2]), redis.call('GET', KEYS[3]),
               rewards, state, state_version, journal}
  if status == 1 then
    local meta = redis.call('HMGET', KEYS[1], 'weights_version', 'weights')
    out[9] = tonumber(meta[1])
    out[10] = meta[2]
  end
  return out
end

if redis.call('ZSCORE', KEYS[6], ARGV[2]) then
  return reply(1, tonumber(redis.call('HGET', KEYS[1], 'version')))
end

local W = tonumber(ARGV[3])
local alpha = tonumber(ARGV[5])
local n_adv = tonumber(ARGV[6])
local n_rew = tonumber(ARGV[7])
local pos = 10

for _ = 1, n_adv do
  local idx = tonumber(ARGV[pos])
  local count = tonumber(ARGV[pos + 1])
  local values = ARGV[pos + 2]
  pos = pos + 3

  local field = tostring(idx)
  local blob = redis.call('HGET', KEYS[5], field)
  local head, len, sum, data = 0, 0, 0.0, nil
  if blob then
    head, len, sum = struct.unpack('<I4I4d', blob)
    data = string.sub(blob, 17)
  else
    data = string.rep('\0', 4 * W)
  end

  -- The m new values go to ring positions head .. head+m-1 (mod W). While the ring is not
  -- full, head == len and positions [0, len) hold values, so a position is evicted exactly
  -- when it held one before.
  local m = #values / 4
  local first = math.min(m, W - head)
  local rest = m - first
  local new_data
  if rest == 0 then
    new_data = string.sub(data, 1, 4 * head) .. values .. string.sub(data, 4 * (head + m) + 1)
  else
    new_data = string.sub(values, 4 * first + 1) .. string.sub(data, 4 * rest + 1, 4 * head)
      .. string.sub(values, 1, 4 * first)
  end
  local new_len = math.min(W, len + m)
  if head + m >= W then
    -- The write reached the end of the ring: resum exactly, so rounding never accumulates.
    sum = sum_f32(string.sub(new_data, 1, 4 * new_len))
  else
    local evicted = 0.0
    if len == W then evicted = sum_f32(string.sub(data, 4 * head + 1, 4 * (head + m))) end
    sum = sum - evicted + sum_f32(values)
  end
  head = (head + m) % W
  redis.call('HSET', KEYS[5], field, struct.pack('<I4I4d', head, new_len, sum) .. new_data)

  local offset = 8 * idx
  local old_n = struct.unpack('<d', redis.call('GETRANGE', KEYS[2], offset, offset + 7))
  redis.call('SETRANGE', KEYS[2], offset, struct.pack('<d', old_n + count))
  local mean = 0.0
  if new_len > 0 then mean = sum / new_len end
  redis.call('SETRANGE', KEYS[3], offset, struct.pack('<d', mean))
end

for _ = 1, n_rew do
  local idx = tonumber(ARGV[pos])
  local count = tonumber(ARGV[pos + 1])
  local batch_mean = tonumber(ARGV[pos + 2])
  pos = pos + 3
  local offset = 32 * idx
  local record = redis.call('GETRANGE', KEYS[4], offset, offset + 31)
  local seen, average, _, best = struct.unpack('<dddd', record)
  if seen == 0 then
    average = batch_mean
    best = batch_mean
  else
    average = (1 - alpha) * average + alpha * batch_mean
    best = math.max(best, average)
  end
  redis.call('SETRANGE', KEYS[4], offset,
             struct.pack('<dddd', seen + count, average, batch_mean, best))
end

local version = redis.call('HINCRBY', KEYS[1], 'version', 1)
redis.call('ZADD', KEYS[6], version, ARGV[2])
redis.call('ZREMRANGEBYRANK', KEYS[6], 0, -(tonumber(ARGV[4]) + 1))
if ARGV[8] ~= '' then
  redis.call('RPUSH', KEYS[11], struct.pack('<d', version) .. ARGV[8])
end
return reply(0, version)
