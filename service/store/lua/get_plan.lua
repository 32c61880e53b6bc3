-- The fixed plan of a (step, batch size), or what is needed to draw it.
--
-- ARGV[1] incarnation    ARGV[2] plan field "{incarnation}:{step}:{batch_size}" (keys.py)
-- ARGV[3] step                  ARGV[4] plan retention in steps
--
-- Returns {EXISTS, the kept plan (keys.py)} when fixed already; {EXPIRED, highest planned
-- step} when the step is older than the kept plans; {OK, version, weights_version, weights}
-- when it is to be drawn; or check_run's refusal (_common.lua).

local status = check_run(ARGV[1])
if status ~= OK then return {status} end
local plan = redis.call('HGET', KEYS[6], ARGV[2])
if plan then return {EXISTS, plan} end
local lowest, max_step = plan_bounds(tonumber(ARGV[4]))
if tonumber(ARGV[3]) < lowest then return {EXPIRED, max_step} end
local meta = redis.call('HMGET', KEYS[1], 'version', 'weights_version', 'weights')
return {OK, tonumber(meta[1]), tonumber(meta[2]), meta[3]}
