-- Prepended to every script of this folder when it is loaded (service/store/scripts.py).
--
-- KEYS, in every script, are the run's keys in the order of service/store/keys.py:
--   KEYS[1] meta      KEYS[2] stats    KEYS[3] rewards   KEYS[4] windows   KEYS[5] reports
--   KEYS[6] plans     KEYS[7] plan_steps KEYS[8] history KEYS[9] state     KEYS[10] journal
--   KEYS[11] ranks    KEYS[12] last_step
--
-- Status codes shared by every script (first element of the reply):
--   -1  the run does not exist
--   -2  the run exists but under another incarnation (deleted and created again since the
--       caller read its config): the caller reloads the config and retries
--   -3  the run was written in another storage layout (meta.layout, see keys.py) than
--       these scripts read: nothing is read or changed

-- The storage layout these scripts read and write (service/store/keys.py STORE_LAYOUT).
local STORE_LAYOUT = '2'

local function check_run(expected_incarnation)
  local meta = redis.call('HMGET', KEYS[1], 'incarnation', 'layout')
  local incarnation = meta[1]
  if not incarnation then return -1 end
  if meta[2] ~= STORE_LAYOUT then return -3 end
  if expected_incarnation ~= '' and incarnation ~= expected_incarnation then return -2 end
  return 0
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

-- Delete every key of the run but meta.
local function delete_state()
  redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9],
             KEYS[10], KEYS[11], KEYS[12])
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
