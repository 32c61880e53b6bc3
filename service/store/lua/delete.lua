-- Remove a run and every key it has.
--
-- ARGV[1] incarnation ('' to delete whatever run has this id)
--
-- Returns {0} when deleted, or {-1} / {-2}.

local status = check_run(ARGV[1])
if status ~= 0 then return {status} end
delete_state()
redis.call('DEL', KEYS[1])
return {0}
