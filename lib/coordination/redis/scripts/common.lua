-- Shared by every script: prepended to each one when it is loaded.

-- The coordinator's clock. Every replica compares due times with Redis's clock, not its own, so
-- clock skew between replicas can delay a fire but never run it early.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Keys edited by hand or by another program can hold what no script wrote. A script checks what
-- it reads of a job before it writes anything for it, so that a corrupt key costs that job only:
-- multi-job scripts answer { 'corrupt', key, what } for it and go on with the others; single-job
-- scripts fail with a 'CORRUPT {"key":…,"what":…}' error. Nothing is written for a corrupt job.
local function corrupt(key, what) return { 'corrupt', key, what } end

local function raise_corrupt(key, what)
  error({ err = 'CORRUPT ' .. cjson.encode({ key = key, what = what }) })
end

-- Runs a read command on one key; a key of another type gives (nil, what is wrong) instead of
-- failing the whole script with WRONGTYPE.
local function read_key(expected, command, key, ...)
  local reply = redis.pcall(command, key, ...)
  if type(reply) == 'table' and reply.err then
    return nil, 'expected a ' .. expected .. ', found a ' .. redis.call('TYPE', key).ok
  end
  return reply, nil
end

local function quoted(value)
  return '"' .. string.sub(tostring(value), 1, 40) .. '"'
end

-- Fields of a job hash that scripts compare or count as numbers.
local NUMERIC_FIELDS = { rev = true, fence = true, base = true, lockedUntil = true, lateSkips = true, defAt = true,
  missedSkips = true, catchUps = true, catchUpTo = true, recovered = true, abandoned = true }
-- Those of them that HINCRBY counts: whole numbers.
local INTEGER_FIELDS = { rev = true, lateSkips = true, missedSkips = true, catchUps = true, recovered = true, abandoned = true }

-- HMGET of a job hash, its numeric fields checked. Returns the values (false for absent fields),
-- or nil and what is wrong. A hash with fields but no `rev` is corrupt, not missing.
local function read_job(job_key, ...)
  local fields = { ... }
  local values, problem = read_key('hash', 'HMGET', job_key, ...)
  if problem then return nil, problem end
  for i, field in ipairs(fields) do
    local value = values[i]
    if value and NUMERIC_FIELDS[field] and tonumber(value) == nil then
      return nil, 'its field "' .. field .. '" is not a number: ' .. quoted(value)
    end
    if value and INTEGER_FIELDS[field] and not string.match(value, '^%-?%d+$') then
      return nil, 'its field "' .. field .. '" is not a whole number: ' .. quoted(value)
    end
  end
  if fields[1] == 'rev' and not values[1] and redis.call('EXISTS', job_key) == 1 then
    return nil, 'it has no field "rev"'
  end
  return values, nil
end

local OVERLAPS = { skip = true, allow = true, ['queue-one'] = true, ['cancel-previous'] = true }

-- A running job's leases live in one hash per job: fencing token -> JSON
-- {i = instanceId, e = expiresAt, s = scheduledAt, t = startedAt, g = trigger, c = 1 for a catch-up run}.
local function decode_lease(raw)
  local ok, lease = pcall(cjson.decode, raw)
  if not ok or type(lease) ~= 'table' or type(lease.e) ~= 'number' or type(lease.i) ~= 'string'
    or type(lease.s) ~= 'number' or type(lease.t) ~= 'number' then
    return nil
  end
  return lease
end

-- Every lease of a job, checked: { { token, lease, raw JSON }, ... }, or nil and what is wrong.
local function read_leases(runs_key)
  local flat, problem = read_key('hash', 'HGETALL', runs_key)
  if problem then return nil, problem end
  local leases = {}
  for i = 1, #flat, 2 do
    local lease = decode_lease(flat[i + 1])
    if not lease or not tonumber(flat[i]) then
      return nil, 'its entry ' .. quoted(flat[i]) .. ' is not a run lease: ' .. quoted(flat[i + 1])
    end
    leases[#leases + 1] = { flat[i], lease, flat[i + 1] }
  end
  return leases, nil
end

-- How long a lease that expired without a finish stays in its runs hash (not live: no script
-- counts it as a run) so that recover.lua can still read what it ran and start its next attempt
-- (see the leases zset below). Recovery comes within a heartbeat of the expiry while any replica
-- with the job lives; past this, the lease goes and its run is counted as abandoned.
local RECOVERY_GRACE_MS = 60000

-- Leases are expired lazily: whoever reads them drops the dead ones (once past the recovery
-- grace). Returns the live ones.
local function drop_expired(runs_key, leases, now)
  local live = {}
  for _, lease in ipairs(leases) do
    if lease[2].e <= now then
      if lease[2].e <= now - RECOVERY_GRACE_MS then redis.call('HDEL', runs_key, lease[1]) end
    else
      live[#live + 1] = lease
    end
  end
  return live
end

-- Every lease of every job is also a member "name \n token" of one sorted set (RedisKeys.leases),
-- scored with its expiry: written by claim.lua, moved by extend.lua, removed by
-- whatever ends the run (finish, stop, a cancel-previous claim, recover). A member whose score
-- has passed is a run whose replica stopped renewing it without finishing it (killed, paused,
-- cut off): recover.lua turns it into the run's next attempt, or counts it as abandoned.
local function lease_member(name, token)
  return name .. '\n' .. token
end

-- The job's own runs among its live leases: a task's lease (`x`, taken by claim.lua for a
-- dispatched task or its retry) is governed by the job's `concurrency`, not by
-- its overlap policy or manual lock, so every overlap decision looks at these only.
local function scheduled_runs(live)
  local runs = {}
  for _, lease in ipairs(live) do
    if lease[2].x == nil then runs[#runs + 1] = lease end
  end
  return runs
end

-- For single-job scripts: the live leases, or a CORRUPT error.
local function live_leases(runs_key, now)
  local leases, problem = read_leases(runs_key)
  if problem then raise_corrupt(runs_key, problem) end
  return drop_expired(runs_key, leases, now)
end

-- For single-job scripts, before they write: fails with a CORRUPT error if the job hash (and, if
-- given, its triggers zset) holds what no script wrote.
local function check_job(job_key, triggers_key)
  local _, problem = read_job(job_key, 'rev', 'fence', 'base', 'lockedUntil')
  if problem then raise_corrupt(job_key, problem) end
  if triggers_key then
    local _, wrong = read_key('zset', 'ZCARD', triggers_key)
    if wrong then raise_corrupt(triggers_key, wrong) end
  end
end

-- A runs hash lives no longer than its latest lease and the recovery grace: expired leases of a
-- job nobody claims again (a crashed task, an on-demand job) go with it, instead of staying forever.
local function keep_runs_until_leases_expire(runs_key, ttl)
  if redis.call('PTTL', runs_key) < ttl + RECOVERY_GRACE_MS then redis.call('PEXPIRE', runs_key, ttl + RECOVERY_GRACE_MS) end
end

-- How long a job's pending triggers are kept when no replica claims them (the job is declared by
-- no live replica): every accepted trigger starts this over; a claimed trigger leaves at once.
local PENDING_TRIGGERS_TTL_MS = 3600000

-- Adds a run's next attempt as a pending trigger of its job, `delay` ms from now (finish.lua: a
-- failed attempt; recover.lua: an attempt whose replica died): member
-- "name \n trigger \n retry:<attempt>:<scheduledAt>:<first token>:<task id>", announced like any trigger.
local function number_text(value) return string.format('%.0f', value) end

local function add_retry(version_key, channel, triggers_key, name, token, lease, delay, now)
  local first = lease.o or tonumber(token)
  local id = 'retry:' .. number_text((lease.a or 1) + 1) .. ':' .. number_text(lease.s) .. ':' .. number_text(first) .. ':' .. (lease.x and number_text(lease.x) or '')
  local member = name .. '\n' .. lease.g .. '\n' .. id
  local at = now + delay
  redis.call('ZADD', triggers_key, at, member)
  -- Kept at least until an hour after it falls due, as any pending trigger.
  if redis.call('PTTL', triggers_key) < delay + PENDING_TRIGGERS_TTL_MS then redis.call('PEXPIRE', triggers_key, delay + PENDING_TRIGGERS_TTL_MS) end
  local v = redis.call('INCR', version_key)
  redis.call('PUBLISH', channel, cjson.encode({ t = 'trigger', name = name, member = member, at = at, v = v }))
end

-- The latest due time served (run, skipped or found late) of a job: `served`, written by claim.lua,
-- or its last run's scheduled time. No due time at or before it may be set again, so a replica
-- whose clock is behind cannot make a fire run twice.
local function served_due(job_key)
  local fields = redis.call('HMGET', job_key, 'served', 'last')
  local served = tonumber(fields[1]) or 0
  if fields[2] then
    local ok, last = pcall(cjson.decode, fields[2])
    if ok and type(last) == 'table' and tonumber(last.s) then served = math.max(served, tonumber(last.s)) end
  end
  return served
end

local function manual_lock_holder(job_key, now)
  local lock = redis.call('HMGET', job_key, 'lockedBy', 'lockedUntil')
  if not lock[1] then return nil end
  local untilMs = tonumber(lock[2]) or 0
  if untilMs ~= 0 and untilMs <= now then
    redis.call('HDEL', job_key, 'lockedBy', 'lockedUntil')
    return nil
  end
  return lock[1]
end

-- Tells every replica that these jobs changed, and bumps the version they poll in case a
-- message is lost while their subscriber reconnects. Each bump is published with the version it
-- made (`v`): a replica that has seen every version up to the one its heartbeat reads has missed
-- nothing, and needs no full snapshot.
local function announce_changed(version_key, channel, names)
  if #names == 0 then return end
  local v = redis.call('INCR', version_key)
  redis.call('PUBLISH', channel, cjson.encode({ t = 'changed', names = names, v = v }))
end

-- Reads and checks what ending a run needs (finish.lua, stop.lua), before anything is written:
-- { last = decoded last run or nil, queued = bool }, or nil, the corrupt key and what is wrong.
local function read_run_end(job_key, triggers_key)
  local job, problem = read_job(job_key, 'last', 'queued')
  if problem then return nil, job_key, problem end
  local last = nil
  if job[1] then
    local ok, decoded = pcall(cjson.decode, job[1])
    if not ok or type(decoded) ~= 'table' then return nil, job_key, 'its field "last" is not a run: ' .. quoted(job[1]) end
    last = decoded
  end
  if job[2] == '1' then
    local _, wrong = read_key('zset', 'ZCARD', triggers_key)
    if wrong then return nil, triggers_key, wrong end
  end
  return { last = last, queued = job[2] == '1' }, nil, nil
end

-- What ending a run does besides dropping its lease (finish.lua, stop.lua): records it as the
-- job's last run if it is the last one started, and starts the run that a 'queue-one' job queued
-- behind it. `ending` is read_run_end's answer.
local function end_run(job_key, triggers_key, version_key, channel, name, token, status, err, now, ending)
  local last = ending.last
  if last and last.k == tonumber(token) then
    last.f, last.st, last.er = now, status, err
    redis.call('HSET', job_key, 'last', cjson.encode(last))
  end
  if ending.queued then
    redis.call('HDEL', job_key, 'queued')
    local member = name .. '\nSCHEDULE\nqueued'
    if redis.call('ZADD', triggers_key, 'NX', now, member) == 1 then
      redis.call('PEXPIRE', triggers_key, PENDING_TRIGGERS_TTL_MS)
      local v = redis.call('INCR', version_key)
      redis.call('PUBLISH', channel, cjson.encode({ t = 'trigger', name = name, member = member, at = now, v = v }))
    end
  end
end

-- Request ids. ioredis sends again, after a reconnection, every command whose reply it had not
-- read, and so may a caller that timed out: a control run twice must change nothing the second
-- time. A script that takes a request key answers a request id it has seen with the answer it
-- gave then (kept for the request ttl), and runs only for a new one. An empty id opts out.
local function replayed(request_key, request_id)
  if request_id == '' then return nil end
  local seen = redis.call('GET', request_key)
  if seen then return cjson.decode(seen) end
  return nil
end

local function remember(request_key, request_id, ttl, answer)
  if request_id ~= '' then redis.call('SET', request_key, cjson.encode(answer), 'PX', ttl) end
  return answer
end
