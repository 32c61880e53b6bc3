-- The fixed plan of a (step, batch size), or what is needed to draw it.
--
-- ARGV[1] incarnation    ARGV[2] plan field "{incarnation}:{step}:{batch_size}" (keys.py)
-- ARGV[3] step                  ARGV[4] plan retention in steps
--
-- Returns {1, the plan's answer JSON} when fixed already; {2, highest planned step} when the step is
-- older than the kept plans; {0, version, weights_version, weights} when it is to be drawn;
-- or {-1} / {-2}.

local status = check_run(ARGV[1])
if status ~= 0 then return {status} end
local plan = redis.call('HGET', KEYS[6], ARGV[2])
if plan then return {1, plan} end
local max_step = tonumber(redis.call('HGET', KEYS[1], 'plan_max_step'))
if tonumber(ARGV[3]) < max_step - tonumber(ARGV[4]) then return {2, max_step} end
local meta = redis.call('HMGET', KEYS[1], 'version', 'weights_version', 'weights')
return {0, tonumber(meta[1]), tonumber(meta[2]), meta[3]}
