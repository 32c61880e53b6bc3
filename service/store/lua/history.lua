-- The newest history entries of a run.
--
-- ARGV[1] incarnation           ARGV[2] how many entries, newest last
--
-- Returns {0, entries (oldest first)}, or {-1} / {-2}.

local status = check_run(ARGV[1])
if status ~= 0 then return {status} end
return {0, redis.call('LRANGE', KEYS[8], -tonumber(ARGV[2]), -1)}
