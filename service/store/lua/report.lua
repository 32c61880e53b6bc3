-- Apply one report: push absolute advantages into the windows, add to the counts, update the
-- reward statistics, bump the version and remember the report id. All or nothing.
--
-- ARGV[1] incarnation           ARGV[2] report id
-- ARGV[3] window W              ARGV[4] how many report ids to remember
-- ARGV[5] reward moving-average weight (0 < alpha <= 1)
-- ARGV[6] A, advantage entries  ARGV[7] R, reward entries
-- then A triples: distribution index, sample count, the last min(count, W) absolute
--   advantages packed float32 (oldest first)
-- then R triples: distribution index, reward count, mean reward of this report
--
-- Returns {0, version, n, mean} when applied (n and mean packed float64 (K,), read after
-- the write, for the caller to compute the new weights), or for a report id seen before
-- {1, version, weights_version, weights, n, mean} with nothing changed; or {-1} / {-2}.

local status = check_run(ARGV[1])
if status ~= 0 then return {status} end

if redis.call('ZSCORE', KEYS[6], ARGV[2]) then
  local meta = redis.call('HMGET', KEYS[1], 'version', 'weights_version', 'weights')
  return {1, tonumber(meta[1]), tonumber(meta[2]), meta[3],
          redis.call('GET', KEYS[2]), redis.call('GET', KEYS[3])}
end

local W = tonumber(ARGV[3])
local alpha = tonumber(ARGV[5])
local n_adv = tonumber(ARGV[6])
local n_rew = tonumber(ARGV[7])
local pos = 8

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
  local offset = 24 * idx
  local seen, average = struct.unpack('<dd', redis.call('GETRANGE', KEYS[4], offset, offset + 15))
  if seen == 0 then average = batch_mean else average = (1 - alpha) * average + alpha * batch_mean end
  redis.call('SETRANGE', KEYS[4], offset, struct.pack('<ddd', seen + count, average, batch_mean))
end

local version = redis.call('HINCRBY', KEYS[1], 'version', 1)
redis.call('ZADD', KEYS[6], version, ARGV[2])
redis.call('ZREMRANGEBYRANK', KEYS[6], 0, -(tonumber(ARGV[4]) + 1))
return {0, version, redis.call('GET', KEYS[2]), redis.call('GET', KEYS[3])}
