-- Remove a run and every key it has.
--
-- ARGV[1] incarnation ('' to delete whatever run has this id)
--
-- Returns {0} when deleted, or {-1} / {-2}.

local status = check_run(ARGV[1])
if status ~= 0 then return {status} end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9])
return {0}
