-- Read a run's prompt state (runs that declare prompts; keys.py: prompts, prompt_dists).
--
-- ARGV[1] incarnation
-- ARGV[2] '*' for every record, else the prompts whose records to read: packed uint32 flat
--         ids ('' : none)
--
-- Returns {OK, prompt_version, prompt_dists, records} (records: the whole string for '*',
-- else one byte per id, in order), or check_run's refusal (_common.lua).

local status = check_run(ARGV[1])
if status ~= OK then return {status} end
local version = redis.call('HGET', KEYS[1], 'prompt_version') or ''
local dists = redis.call('GET', KEYS[14]) or ''
if ARGV[2] == '*' then
  return {OK, version, dists, redis.call('GET', KEYS[13]) or ''}
end
local ids = ARGV[2]
local out = {}
for i = 1, #ids / 4 do
  local flat = struct.unpack('<I4', ids, 4 * (i - 1) + 1)
  out[i] = redis.call('GETRANGE', KEYS[13], flat, flat)
end
return {OK, version, dists, table.concat(out)}
