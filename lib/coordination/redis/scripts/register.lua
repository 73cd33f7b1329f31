-- Registers jobs from one replica's code, atomically, so replicas that boot together create
-- each job once.
-- KEYS: names set, due zset, version, then one job hash per job.
-- ARGV: instanceId, mode ('boot' | 'restore'), channel, then per job 8 values:
--       name, definition JSON, definition hash, spec JSON, overlap, paused ('1' | '0'),
--       first base ('' for none), first due ('' for none).
-- Returns per job: { 'created' } | { 'unchanged' } | { 'replaced' | 'differs', other definition, other instance }
--                | { 'passed', now } (restore only: the first due time is not after Redis's now)
--                | { 'corrupt', key, what } if the job hash holds what no script wrote: it is left as it is
--                  (a job is never re-created over a key someone else may have written), until it is
--                  repaired or deleted.
-- Restore: re-creating a job Redis lost is refused when its due time has come by Redis's clock,
-- since that fire may have been served before the loss (a claim consumes a due time only once
-- Redis's clock has reached it, so one still ahead cannot have run). The caller computes the
-- next due time after `now` and registers again.
-- Boot with a different definition: only what changed in the code is applied. A changed
-- schedule replaces the one in force (re-based, new revision); a changed `paused` pauses or
-- resumes; any other change (overlap) leaves the schedule, the due time and a runtime pause alone.
local names_key, due_key, version_key = KEYS[1], KEYS[2], KEYS[3]
local instance, mode, channel = ARGV[1], ARGV[2], ARGV[3]
local now = now_ms()
local results, changed = {}, {}
local FIELDS = 8

local function decoded(json)
  local ok, value = pcall(cjson.decode, json or '')
  if ok and type(value) == 'table' then return value end
  return nil
end

local function same_spec(a, b)
  if a == cjson.null or b == cjson.null or a == nil or b == nil then return a == b end
  return a.cron == b.cron and a.timeZone == b.timeZone and a.every == b.every and a.jitter == b.jitter
end

local n = (#ARGV - 3) / FIELDS
for i = 1, n do
  local a = 3 + (i - 1) * FIELDS
  local name, def, hash, spec, overlap, paused, base, due =
    ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], ARGV[a + 5], ARGV[a + 6], ARGV[a + 7], ARGV[a + 8]
  local job_key = KEYS[3 + i]

  local function set_due(is_paused)
    if is_paused == '0' and due ~= '' then
      -- A due time at or before the latest served one was computed from a clock that is behind and
      -- would run a served fire again: the due time already set (after the served one, as every
      -- claim leaves it) stays.
      if tonumber(due) > served_due(job_key) then
        redis.call('ZADD', due_key, due, name)
        redis.call('HSET', job_key, 'base', base)
      end
    else
      redis.call('ZREM', due_key, name)
      redis.call('HDEL', job_key, 'base')
    end
  end

  local checked, problem = read_job(job_key, 'rev', 'fence', 'base', 'lockedUntil')
  if problem then
    results[i] = corrupt(job_key, problem)
  elseif not checked[1] then
    if mode == 'restore' and due ~= '' and paused == '0' and tonumber(due) <= now then
      results[i] = { 'passed', now }
    else
      redis.call('HSET', job_key, 'rev', 1, 'def', def, 'defHash', hash, 'defBy', instance, 'defAt', now,
        'spec', spec, 'overlap', overlap, 'paused', paused)
      redis.call('SADD', names_key, name)
      set_due(paused)
      changed[#changed + 1] = name
      results[i] = { 'created' }
    end
  else
    local current = redis.call('HMGET', job_key, 'defHash', 'def', 'defBy', 'paused')
    if current[1] == hash then
      results[i] = { 'unchanged' }
    elseif mode == 'boot' then
      local old, new = decoded(current[2]), decoded(def)
      redis.call('HSET', job_key, 'def', def, 'defHash', hash, 'defBy', instance, 'defAt', now, 'overlap', overlap)
      local spec_changed = not (old and new and same_spec(old.spec, new.spec))
      local paused_changed = not (old and new and old.paused == new.paused)
      local was_paused = current[4] or '0'
      local is_paused = was_paused
      if paused_changed then is_paused = paused end
      if spec_changed or is_paused ~= was_paused then
        redis.call('HINCRBY', job_key, 'rev', 1)
        if spec_changed then redis.call('HSET', job_key, 'spec', spec) end
        redis.call('HSET', job_key, 'paused', is_paused)
        set_due(is_paused)
      end
      changed[#changed + 1] = name
      results[i] = { 'replaced', current[2], current[3] }
    else
      results[i] = { 'differs', current[2], current[3] }
    end
  end
end

announce_changed(version_key, channel, changed)
return results
