-- Registers jobs from one replica's code, atomically, so replicas that boot together create
-- each job once.
-- KEYS: names set, due zset, version, then one job hash per job.
-- ARGV: instanceId, mode ('boot' | 'restore'), channel, then per job 8 values:
--       name, definition JSON, definition hash, spec JSON, overlap, paused ('1' | '0'),
--       first base ('' for none), first due ('' for none).
-- Returns per job: { 'created' } | { 'unchanged' } | { 'replaced' | 'differs', other definition, other instance }.
local names_key, due_key, version_key = KEYS[1], KEYS[2], KEYS[3]
local instance, mode, channel = ARGV[1], ARGV[2], ARGV[3]
local now = now_ms()
local results, changed = {}, {}
local FIELDS = 8

local n = (#ARGV - 3) / FIELDS
for i = 1, n do
  local a = 3 + (i - 1) * FIELDS
  local name, def, hash, spec, overlap, paused, base, due =
    ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], ARGV[a + 5], ARGV[a + 6], ARGV[a + 7], ARGV[a + 8]
  local job_key = KEYS[3 + i]

  local function apply_definition()
    redis.call('HSET', job_key, 'def', def, 'defHash', hash, 'defBy', instance, 'defAt', now,
      'spec', spec, 'overlap', overlap, 'paused', paused)
    if paused == '0' and due ~= '' then
      local served = served_due(job_key)
      if tonumber(due) > served then
        redis.call('ZADD', due_key, due, name)
        redis.call('HSET', job_key, 'base', base)
      end
      -- Otherwise it was computed from a clock that is behind and would run a served fire again:
      -- the due time already set (after the served one, as every claim leaves it) stays.
    else
      redis.call('ZREM', due_key, name)
      redis.call('HDEL', job_key, 'base')
    end
    changed[#changed + 1] = name
  end

  if redis.call('EXISTS', job_key) == 0 then
    redis.call('HSET', job_key, 'rev', 1)
    redis.call('SADD', names_key, name)
    apply_definition()
    results[i] = { 'created' }
  else
    local current = redis.call('HMGET', job_key, 'defHash', 'def', 'defBy')
    if current[1] == hash then
      results[i] = { 'unchanged' }
    elseif mode == 'boot' then
      redis.call('HINCRBY', job_key, 'rev', 1)
      apply_definition()
      results[i] = { 'replaced', current[2], current[3] }
    else
      results[i] = { 'differs', current[2], current[3] }
    end
  end
end

announce_changed(version_key, channel, changed)
return results
