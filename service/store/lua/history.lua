-- The newest history entries of a run.
--
-- ARGV[1] incarnation           ARGV[2] how many entries, newest last
--
-- Returns {OK, entries (oldest first)}, or check_run's refusal (_common.lua).

local status = check_run(ARGV[1])
if status ~= OK then return {status} end
return {OK, redis.call('LRANGE', KEYS[8], -tonumber(ARGV[2]), -1)}
