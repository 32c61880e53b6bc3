-- Remove a run and every key it has.
--
-- ARGV[1] incarnation ('' to delete whatever run has this id)
--
-- Returns {OK} when deleted, or check_run's refusal (_common.lua).

local status = check_run(ARGV[1])
if status ~= OK then return {status} end
delete_state()
redis.call('DEL', KEYS[1])
return {OK}
