-- Create a run unless one exists under this id.
--
-- ARGV[1] config JSON           ARGV[2] incarnation (random hex)
-- ARGV[3] token hash            ARGV[4] initial weights, packed float64 (K,)
-- ARGV[5] K, the number of distributions
-- ARGV[6] the strategy's initial state, packed float64 (empty for stateless strategies)
-- ARGV[7] bytes of the windows' rings (4 x window x K), allocated now: grown write by write,
--         the string would be given up to twice that (Redis over-allocates as it grows)
-- ARGV[8] prompts declared in all (0: the run declares none)
-- ARGV[9] the initial prompt_dists string (keys.py; '' without prompts)
--
-- Returns {OK} when created, {EXISTS, existing config JSON} when the run already exists (the
-- caller compares the configurations: same is a no-op, different is a conflict).

local existing = redis.call('HGET', KEYS[1], 'config')
if existing then return {EXISTS, existing} end

local k = tonumber(ARGV[5])
-- No other key of a run can outlive its meta, but a clean slate costs nothing here.
delete_state()
redis.call('HSET', KEYS[1],
  'config', ARGV[1], 'incarnation', ARGV[2], 'token_hash', ARGV[3], 'version', 0,
  'weights', ARGV[4], 'weights_version', 0, 'plan_max_step', -1, 'state_version', 0,
  'layout', STORE_LAYOUT)
redis.call('SET', KEYS[9], ARGV[6])
redis.call('SET', KEYS[2], string.rep('\0', 32 * k))
redis.call('SET', KEYS[3], string.rep('\0', 32 * k))
redis.call('SETRANGE', KEYS[4], tonumber(ARGV[7]) - 1, '\0')
local prompts = tonumber(ARGV[8])
if prompts > 0 then
  redis.call('SETRANGE', KEYS[13], prompts - 1, '\0')
  redis.call('SET', KEYS[14], ARGV[9])
  redis.call('HSET', KEYS[1], 'prompt_version', 0)
end
return {OK}
