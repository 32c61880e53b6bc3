-- Fix the plan of a (step, batch size) unless another caller fixed it first, and drop the
-- plans of steps older than the retention, and of the oldest steps while the kept plans
-- would pass their byte budget.
--
-- ARGV[1] incarnation    ARGV[2] plan field "{incarnation}:{step}:{batch_size}" (keys.py)
-- ARGV[3] step                  ARGV[4] the plan, as keys.py keeps it
-- ARGV[5] plan retention in steps
-- ARGV[6] the plans' byte budget   ARGV[7] bytes a kept plan costs beyond its field and value
-- ARGV[8] the meta.prompt_version the plan's prompts were drawn at ('' : no prompts)
-- ARGV[9] the prompt_dists string after the plan (keys.py; '' : no prompts)
-- ARGV[10] the meta.prompt_version of the state after the plan (keys.py)
-- ARGV[11] the version of the weights the plan was drawn from, when they were not read
--          just before ('' : no check): stored only while they are the run's weights and
--          those are fresh (meta.weights_version and meta.version both equal to it)
--
-- A plan costs its bytes, twice its field's (the hash's field and the sorted set's member)
-- and ARGV[7]; meta.plan_bytes is the sum over the kept plans. Plans are dropped a whole
-- step at a time, oldest first and only of steps older than this one, and
-- meta.plan_min_step moves past them: their step is expired from then on.
--
-- Returns {OK, plan} when this plan was stored, {EXISTS, plan} with the plan fixed first by
-- another caller, {EXPIRED, highest planned step} when the step is too old, {MOVED, version,
-- weights_version, weights} (get_plan's answer) when the weights are not those of ARGV[11]
-- (nothing was written: draw again from these), {CONFLICT} when the prompt state moved since
-- ARGV[8] (nothing was written: read and draw again), {FULL, bytes the kept plans count}
-- when the plans of this step and newer ones leave it no room (older plans may have been
-- dropped, nothing was stored), or check_run's refusal (_common.lua).

local status = check_run(ARGV[1])
if status ~= OK then return {status} end
local existing = redis.call('HGET', KEYS[6], ARGV[2])
if existing then return {EXISTS, existing} end

local step = tonumber(ARGV[3])
local retention = tonumber(ARGV[5])
local budget = tonumber(ARGV[6])
local overhead = tonumber(ARGV[7])
local lowest, max_step = plan_bounds(retention)
if step < lowest then return {EXPIRED, max_step} end
if ARGV[11] ~= '' then
  local meta = redis.call('HMGET', KEYS[1], 'version', 'weights_version')
  local version, weights_version = tonumber(meta[1]), tonumber(meta[2])
  local drawn_from = tonumber(ARGV[11])
  if version ~= drawn_from or weights_version ~= drawn_from then
    return {MOVED, version, weights_version, redis.call('HGET', KEYS[1], 'weights')}
  end
end
if not prompts_unchanged(ARGV[8]) then return {CONFLICT} end

local used = tonumber(redis.call('HGET', KEYS[1], 'plan_bytes') or 0)
local min_step = lowest

-- Drop every plan of a step below `limit`.
local function drop_below(limit)
  local bound = '(' .. string.format('%.0f', limit)
  local fields = redis.call('ZRANGEBYSCORE', KEYS[7], '-inf', bound)
  if #fields == 0 then return end
  for _, field in ipairs(fields) do
    used = used - redis.call('HSTRLEN', KEYS[6], field) - 2 * #field - overhead
  end
  call_chunked('HDEL', KEYS[6], fields)
  redis.call('ZREMRANGEBYSCORE', KEYS[7], '-inf', bound)
  min_step = math.max(min_step, limit)
end

if step > max_step then max_step = step end
drop_below(max_step - retention)
local cost = #ARGV[4] + 2 * #ARGV[2] + overhead
while used + cost > budget do
  local oldest = redis.call('ZRANGE', KEYS[7], 0, 0, 'WITHSCORES')
  if #oldest == 0 or tonumber(oldest[2]) >= step then break end
  drop_below(tonumber(oldest[2]) + 1)
end
used = math.max(used, 0)  -- plans stored before the budget was kept were never counted
local fits = used + cost <= budget
if fits then
  redis.call('HSET', KEYS[6], ARGV[2], ARGV[4])
  redis.call('ZADD', KEYS[7], step, ARGV[2])
  used = used + cost
  redis.call('HSET', KEYS[1], 'plan_max_step', string.format('%.0f', max_step))
  write_prompt_dists(ARGV[9], ARGV[10])
end
redis.call('HSET', KEYS[1], 'plan_min_step', string.format('%.0f', min_step), 'plan_bytes', used)
if not fits then return {FULL, used} end
return {OK, ARGV[4]}
