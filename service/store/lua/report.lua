-- Apply one report: push absolute advantages into the windows, add to the counts, update the
-- reward statistics, bump the version and remember the report id. All or nothing.
--
-- ARGV[1] incarnation           ARGV[2] report id
-- ARGV[3] window W              ARGV[4] how many report ids to remember
-- ARGV[5] reward moving-average weight (0 < alpha <= 1)
-- ARGV[6] advantage heads: per entry <I4 distribution index, I4 sample count, I4 m>
-- ARGV[7] advantage values: per entry, the last m = min(count, W) absolute advantages packed
--         float32 (oldest first), the entries one after the other
-- ARGV[8] reward entries: per entry <I4 distribution index, I4 reward count, f8 batch mean>
-- ARGV[9] journal entry body for a stateful strategy ('' for a stateless one)
-- ARGV[10] '1' to return the rewards array (a strategy that reads it), '0' for '' instead
-- ARGV[11] now, Unix seconds (the service's clock)   ARGV[12] the reporting rank ('-': none)
-- ARGV[13] the report's step
-- ARGV[14] the meta.prompt_version the groups' effect was computed at ('' : no groups)
-- ARGV[15] the prompt_dists string after the groups (keys.py; '' : no groups)
-- ARGV[16] the meta.prompt_version of the state after the groups (keys.py)
-- ARGV[17] the prompts whose records change: packed uint32 flat ids (keys.py: prompts)
-- ARGV[18] their new records, one byte each, in the same order
-- (service/store/codec.py, PackedReport, writes ARGV[6..8]: three arguments however many
-- distributions a report touches.)
--
-- Returns, read after the write, for the caller to compute the new weights:
--   {OK, version, stats, rewards, state, state_version, journal} when applied,
--   {EXISTS, version, stats, rewards, state, state_version, journal, weights_version, weights}
--   for a report id seen before (nothing changed); {CONFLICT} when the prompt state moved
--   since ARGV[14] (nothing changed: read and compute again); or check_run's refusal
--   (_common.lua).
-- stats and rewards are the strings of keys.py; journal is a list of entries.

local status = check_run(ARGV[1])
if status ~= OK then return {status} end

local function reply(status, version)
  local state, state_version, journal = strategy_inputs()
  local rewards = ''
  if ARGV[10] == '1' then rewards = redis.call('GET', KEYS[3]) end
  local out = {status, version, redis.call('GET', KEYS[2]), rewards, state, state_version,
               journal}
  if status == EXISTS then
    local meta = redis.call('HMGET', KEYS[1], 'weights_version', 'weights')
    out[8] = tonumber(meta[1])
    out[9] = meta[2]
  end
  return out
end

if redis.call('ZSCORE', KEYS[5], ARGV[2]) then
  return reply(EXISTS, tonumber(redis.call('HGET', KEYS[1], 'version')))
end

if not prompts_unchanged(ARGV[14]) then return {CONFLICT} end

-- The groups' records (computed by the service with curriculum_core.prompts from the
-- bytes read at ARGV[14]), one SETRANGE per prompt named.
local flat_ids, records = ARGV[17], ARGV[18]
for i = 1, #records do
  local flat = struct.unpack('<I4', flat_ids, 4 * (i - 1) + 1)
  redis.call('SETRANGE', KEYS[13], flat, string.sub(records, i, i))
end
write_prompt_dists(ARGV[15], ARGV[16])

local W = tonumber(ARGV[3])
local alpha = tonumber(ARGV[5])
local heads, all_values, reward_entries = ARGV[6], ARGV[7], ARGV[8]
local step = tonumber(ARGV[13])
-- 1 + the step of the last report that sampled a distribution (keys.py: last_step)
local last_step = struct.pack('<d', step + 1)
local value_pos = 1

for i = 1, #heads / 12 do
  local idx, count, m = struct.unpack('<I4I4I4', heads, 12 * (i - 1) + 1)
  local values = string.sub(all_values, value_pos, value_pos + 4 * m - 1)
  value_pos = value_pos + 4 * m

  -- The distribution's record in stats: <f8 n, f8 mean, I4 head, I4 length, f8 sum>; its
  -- window is ring idx of the windows string, W float32 (keys.py). Only the record and the
  -- ring positions written and evicted are touched.
  local stats_at = 32 * idx
  local n, _, head, len, sum =
    struct.unpack('<ddI4I4d', redis.call('GETRANGE', KEYS[2], stats_at, stats_at + 31))
  local ring = 4 * W * idx

  -- The m new values go to ring positions head .. head+m-1 (mod W). While the ring is not
  -- full, head == len and positions [0, len) hold values, so a position is evicted exactly
  -- when it held one before.
  local first = math.min(m, W - head)
  local new_len = math.min(W, len + m)
  if head + m >= W then
    redis.call('SETRANGE', KEYS[4], ring + 4 * head, string.sub(values, 1, 4 * first))
    if m > first then
      redis.call('SETRANGE', KEYS[4], ring, string.sub(values, 4 * first + 1))
    end
    -- The write reached the end of the ring: resum exactly, so rounding never accumulates.
    sum = sum_f32(redis.call('GETRANGE', KEYS[4], ring, ring + 4 * new_len - 1))
  else
    local evicted = 0.0
    if len == W then
      evicted = sum_f32(redis.call('GETRANGE', KEYS[4], ring + 4 * head,
                                   ring + 4 * (head + m) - 1))
    end
    redis.call('SETRANGE', KEYS[4], ring + 4 * head, values)
    sum = sum - evicted + sum_f32(values)
  end
  head = (head + m) % W
  redis.call('SETRANGE', KEYS[2], stats_at,
             struct.pack('<ddI4I4d', n + count, sum / new_len, head, new_len, sum))
  redis.call('SETRANGE', KEYS[12], 8 * idx, last_step)
end

for i = 1, #reward_entries / 16 do
  local idx, count, batch_mean = struct.unpack('<I4I4d', reward_entries, 16 * (i - 1) + 1)
  local offset = 32 * idx
  local record = redis.call('GETRANGE', KEYS[3], offset, offset + 31)
  local seen, average, _, best = struct.unpack('<dddd', record)
  if seen == 0 then
    average = batch_mean
    best = batch_mean
  else
    average = (1 - alpha) * average + alpha * batch_mean
    best = math.max(best, average)
  end
  redis.call('SETRANGE', KEYS[3], offset,
             struct.pack('<dddd', seen + count, average, batch_mean, best))
end

local version = redis.call('HINCRBY', KEYS[1], 'version', 1)
redis.call('HSET', KEYS[1], 'reported_at', ARGV[11])
redis.call('HSET', KEYS[11], ARGV[12], struct.pack('<ddd', tonumber(ARGV[11]), step, version))
redis.call('ZADD', KEYS[5], version, ARGV[2])
redis.call('ZREMRANGEBYRANK', KEYS[5], 0, -(tonumber(ARGV[4]) + 1))
if ARGV[9] ~= '' then
  redis.call('RPUSH', KEYS[10], struct.pack('<d', version) .. ARGV[9])
end
return reply(OK, version)
