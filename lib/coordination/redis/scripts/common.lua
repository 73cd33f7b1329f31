-- Shared by every script: prepended to each one when it is loaded.

-- The coordinator's clock. Every replica compares due times with Redis's clock, not its own, so
-- clock skew between replicas can delay a fire but never run it early.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- A running job's leases live in one hash per job: fencing token -> JSON
-- {i = instanceId, e = expiresAt, s = scheduledAt, t = startedAt, g = trigger}.
-- Leases are expired lazily: whoever reads them drops the dead ones.
local function live_leases(runs_key, now)
  local flat = redis.call('HGETALL', runs_key)
  local live = {}
  for i = 1, #flat, 2 do
    local lease = cjson.decode(flat[i + 1])
    if lease.e <= now then
      redis.call('HDEL', runs_key, flat[i])
    else
      live[#live + 1] = { flat[i], lease }
    end
  end
  return live
end

-- A runs hash lives no longer than its latest lease: expired leases of a job nobody claims
-- again (a crashed task, an on-demand job) go with it, instead of staying forever.
local function keep_runs_until_leases_expire(runs_key, ttl)
  if redis.call('PTTL', runs_key) < ttl then redis.call('PEXPIRE', runs_key, ttl) end
end

-- How long a job's pending triggers are kept when no replica claims them (the job is declared by
-- no live replica): every accepted trigger starts this over; a claimed trigger leaves at once.
local PENDING_TRIGGERS_TTL_MS = 3600000

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

-- What ending a run does besides dropping its lease (finish.lua, stop.lua): records it as the
-- job's last run if it is the last one started, and starts the run that a 'queue-one' job queued
-- behind it.
local function end_run(job_key, triggers_key, version_key, channel, name, token, status, err, now)
  local job = redis.call('HMGET', job_key, 'last', 'queued')
  if job[1] then
    local last = cjson.decode(job[1])
    if last.k == tonumber(token) then
      last.f, last.st, last.er = now, status, err
      redis.call('HSET', job_key, 'last', cjson.encode(last))
    end
  end
  if job[2] == '1' then
    redis.call('HDEL', job_key, 'queued')
    local member = name .. '\nSCHEDULE\nqueued'
    if redis.call('ZADD', triggers_key, 'NX', now, member) == 1 then
      redis.call('PEXPIRE', triggers_key, PENDING_TRIGGERS_TTL_MS)
      local v = redis.call('INCR', version_key)
      redis.call('PUBLISH', channel, cjson.encode({ t = 'trigger', name = name, member = member, at = now, v = v }))
    end
  end
end
