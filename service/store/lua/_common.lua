-- Prepended to every script of this folder when it is loaded (service/store/scripts.py).
--
-- KEYS, in every script, are the run's keys in the order of service/store/keys.py:
--   KEYS[1] meta      KEYS[2] stats    KEYS[3] rewards   KEYS[4] windows   KEYS[5] reports
--   KEYS[6] plans     KEYS[7] plan_steps KEYS[8] history KEYS[9] state     KEYS[10] journal
--   KEYS[11] ranks    KEYS[12] last_step KEYS[13] prompts KEYS[14] prompt_dists
--
-- Status codes, the first element of every reply (service/store/replies.py, Status, has
-- the same names and values; a test compares them):
local OK = 0             -- done: created, applied, stored, read
local EXISTS = 1         -- what the call would write is there already: the run (create),
                         -- the report id (report), the step's plan (get_plan, put_plan),
                         -- newer weights (set_weights)
local EXPIRED = 2        -- the step is older than the kept plans (get_plan, put_plan)
local FULL = 3           -- the plans of the step and newer ones fill the plans' byte
                         -- budget (put_plan)
local CONFLICT = 4       -- the prompt state changed since the caller read it (meta
                         -- prompt_version): nothing was written; read and compute again
local MOVED = 5          -- the weights changed since the caller read them (put_plan):
                         -- nothing was written; the reply carries the current ones
local RUN_MISSING = -1   -- the run does not exist
local RUN_RECREATED = -2 -- the run exists under another incarnation (deleted and created
                         -- again since the caller read its config): reload and retry
local OTHER_LAYOUT = -3  -- the run was written in another storage layout (meta.layout,
                         -- keys.py) than these scripts read: nothing is read or changed
local INVALID = -4       -- an argument is not what the script takes (import): nothing is
                         -- changed; the second element says which

-- The storage layout these scripts read and write (service/store/keys.py STORE_LAYOUT).
local STORE_LAYOUT = '2'

local function check_run(expected_incarnation)
  local meta = redis.call('HMGET', KEYS[1], 'incarnation', 'layout')
  local incarnation = meta[1]
  if not incarnation then return RUN_MISSING end
  if meta[2] ~= STORE_LAYOUT then return OTHER_LAYOUT end
  if expected_incarnation ~= '' and incarnation ~= expected_incarnation then
    return RUN_RECREATED
  end
  return OK
end

-- Sum of the little-endian float32 values packed in s, in float64.
local function sum_f32(s)
  local total = 0.0
  local count = #s / 4
  local done = 0
  while done < count do
    local chunk = math.min(count - done, 256)
    local values = {struct.unpack('<' .. string.rep('f', chunk), s, 4 * done + 1)}
    for j = 1, chunk do total = total + values[j] end
    done = done + chunk
  end
  return total
end

-- Delete every key of the run but meta, and meta's account of the plans.
local function delete_state()
  redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9],
             KEYS[10], KEYS[11], KEYS[12], KEYS[13], KEYS[14])
  redis.call('HDEL', KEYS[1], 'plan_bytes', 'plan_min_step')
end

-- The lowest step whose plans are kept and the highest planned: a step under either
-- bound (the first moves up as plans are dropped, keys.py) is expired.
local function plan_bounds(retention)
  local meta = redis.call('HMGET', KEYS[1], 'plan_min_step', 'plan_max_step')
  local max_step = tonumber(meta[2])
  return math.max(tonumber(meta[1] or 0), max_step - retention), max_step
end

-- The strategy's stored state, its version, and the journal of reports applied since:
-- {state, state_version, {entries...}}.
local function strategy_inputs()
  return redis.call('GET', KEYS[9]) or '',
         tonumber(redis.call('HGET', KEYS[1], 'state_version')),
         redis.call('LRANGE', KEYS[10], 0, -1)
end

-- Call redis command `cmd` on `key` with the items of `list`, 1000 (an even number, so pairs
-- stay whole) at a time, so that no single call unpacks too many arguments.
local function call_chunked(cmd, key, list)
  local size = 1000
  for i = 1, #list, size do
    local last = math.min(i + size - 1, #list)
    redis.call(cmd, key, unpack(list, i, last))
  end
end

-- Whether the prompt state is still at the version the caller read (meta.prompt_version;
-- keys.py): '' (a run without prompts) always is.
local function prompts_unchanged(expected)
  if expected == '' then return true end
  return redis.call('HGET', KEYS[1], 'prompt_version') == expected
end

-- Write a new prompt_dists string and set meta.prompt_version to the version the writer
-- drew for the state after its write (keys.py; '' : no prompts).
local function write_prompt_dists(dists, version)
  if dists == '' then return end
  redis.call('SET', KEYS[14], dists)
  redis.call('HSET', KEYS[1], 'prompt_version', version)
end
