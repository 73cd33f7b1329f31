-- Registers jobs from one replica's code, atomically, so replicas that boot together create
-- each job once.
-- KEYS: names set, due zset, version, live replicas zset, then per job its job hash and its
--       declarers hash.
-- ARGV: instanceId, mode ('boot' | 'restore' | 'offer'), channel, then per job 8 values:
--       name, definition JSON, definition hash, spec JSON, overlap, paused ('1' | '0'),
--       first base ('' for none), first due ('' for none).
-- Returns per job: { 'created' } | { 'unchanged' } | { 'replaced' | 'differs' | 'superseded', other definition, other instance }
--                | { 'passed', now } (restore only: the first due time is not after Redis's now)
--                | { 'missing' } (offer only: the job is not there; nothing is written)
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
-- Superseded definitions: the job hash keeps (`superseded`, a JSON array) the hashes of the last
-- MAX_SUPERSEDED definitions a boot replaced, and the declarers hash which instance declared
-- which definition hash at its latest registration (any mode). A boot whose definition is in
-- that list does not replace the one in force while a live replica (one in the replicas zset,
-- other than the caller) declares it: it answers 'superseded', so an old replica restarting
-- during or after a rolling deploy cannot take the cluster back. Once no live replica declares
-- the definition in force (the last one left, or its heartbeat expired), the same boot replaces
-- it: that is how a rollback takes over. A definition never replaced (a new deploy) always does.
-- Offer: a replica told 'superseded' offers its definition again when the live replicas change.
-- It replaces as a boot does, but only a definition still in the superseded list: one the list
-- no longer holds (forgotten, or Redis lost its state) answers 'differs', and a missing job
-- 'missing', so an offer never creates a job nor replaces one whose history is unknown.
-- Declarers no longer in the replicas zset are dropped whenever the job is registered, so the
-- hash holds the live replicas and those gone since the job's last registration.
local names_key, due_key, version_key, replicas_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local instance, mode, channel = ARGV[1], ARGV[2], ARGV[3]
local now = now_ms()
local results, changed = {}, {}
local FIELDS = 8
local MAX_SUPERSEDED = 8

local function decoded(json)
  local ok, value = pcall(cjson.decode, json or '')
  if ok and type(value) == 'table' then return value end
  return nil
end

local function same_spec(a, b)
  if a == cjson.null or b == cjson.null or a == nil or b == nil then return a == b end
  return a.cron == b.cron and a.timeZone == b.timeZone and a.every == b.every and a.jitter == b.jitter
end

-- The superseded hashes a job hash holds (a list of strings; anything else reads as none).
local function superseded_list(raw)
  local list = {}
  for _, value in ipairs(decoded(raw) or {}) do
    if type(value) == 'string' then list[#list + 1] = value end
  end
  return list
end

local function contains(list, value)
  for _, item in ipairs(list) do
    if item == value then return true end
  end
  return false
end

-- After a boot replaced `old` by `new`: `old` is superseded, `new` no longer, and only the
-- latest MAX_SUPERSEDED are kept.
local function supersede(list, old, new)
  local kept = {}
  for _, item in ipairs(list) do
    if item ~= old and item ~= new then kept[#kept + 1] = item end
  end
  if old then kept[#kept + 1] = old end
  while #kept > MAX_SUPERSEDED do table.remove(kept, 1) end
  return kept
end

-- Drops the declarers that are not live, and says whether a live one other than the caller
-- declares `hash`. A declarers key of another type (not written by a script) is left alone and
-- read as no declarer: it only costs the protection against superseded definitions.
local function live_declarer(declared_key, hash)
  local flat, problem = read_key('hash', 'HGETALL', declared_key)
  if problem then return false, false end
  local found = false
  for j = 1, #flat, 2 do
    local who = flat[j]
    if who ~= instance then
      if not redis.call('ZSCORE', replicas_key, who) then
        redis.call('HDEL', declared_key, who)
      elseif flat[j + 1] == hash then
        found = true
      end
    end
  end
  return found, true
end

local n = (#ARGV - 3) / FIELDS
for i = 1, n do
  local a = 3 + (i - 1) * FIELDS
  local name, def, hash, spec, overlap, paused, base, due =
    ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], ARGV[a + 5], ARGV[a + 6], ARGV[a + 7], ARGV[a + 8]
  local job_key, declared_key = KEYS[3 + 2 * i], KEYS[4 + 2 * i]

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
  local declarers_readable = false
  if problem then
    results[i] = corrupt(job_key, problem)
  elseif not checked[1] and mode == 'offer' then
    results[i] = { 'missing' }
  elseif not checked[1] then
    local _, readable = live_declarer(declared_key, '')
    declarers_readable = readable
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
    local current = redis.call('HMGET', job_key, 'defHash', 'def', 'defBy', 'paused', 'superseded')
    local declared_live
    declared_live, declarers_readable = live_declarer(declared_key, current[1])
    local superseded = superseded_list(current[5])
    if current[1] == hash then
      results[i] = { 'unchanged' }
    elseif mode ~= 'restore' and declared_live and contains(superseded, hash) then
      results[i] = { 'superseded', current[2], current[3] }
    elseif mode == 'boot' or (mode == 'offer' and contains(superseded, hash)) then
      local old, new = decoded(current[2]), decoded(def)
      redis.call('HSET', job_key, 'def', def, 'defHash', hash, 'defBy', instance, 'defAt', now, 'overlap', overlap,
        'superseded', cjson.encode(supersede(superseded, current[1], hash)))
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
  if declarers_readable then redis.call('HSET', declared_key, instance, hash) end
end

announce_changed(version_key, channel, changed)
return results
