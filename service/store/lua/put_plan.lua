-- Fix the plan of a (step, batch size) unless another caller fixed it first, and drop plans
-- of steps older than the retention.
--
-- ARGV[1] incarnation    ARGV[2] plan field "{incarnation}:{step}:{batch_size}" (keys.py)
-- ARGV[3] step                  ARGV[4] the plan's answer, JSON
-- ARGV[5] plan retention in steps
--
-- Returns {OK, plan JSON} when this plan was stored, {EXISTS, plan JSON} with the plan fixed
-- first by another caller, {EXPIRED, highest planned step} when the step is too old, or
-- check_run's refusal (_common.lua).

local status = check_run(ARGV[1])
if status ~= OK then return {status} end
local existing = redis.call('HGET', KEYS[6], ARGV[2])
if existing then return {EXISTS, existing} end

local step = tonumber(ARGV[3])
local retention = tonumber(ARGV[5])
local max_step = tonumber(redis.call('HGET', KEYS[1], 'plan_max_step'))
if step < max_step - retention then return {EXPIRED, max_step} end

redis.call('HSET', KEYS[6], ARGV[2], ARGV[4])
redis.call('ZADD', KEYS[7], step, ARGV[2])
if step > max_step then
  max_step = step
  redis.call('HSET', KEYS[1], 'plan_max_step', max_step)
end
local cutoff = '(' .. tostring(max_step - retention)
local expired = redis.call('ZRANGEBYSCORE', KEYS[7], '-inf', cutoff)
if #expired > 0 then
  call_chunked('HDEL', KEYS[6], expired)
  redis.call('ZREMRANGEBYSCORE', KEYS[7], '-inf', cutoff)
end
return {OK, ARGV[4]}
