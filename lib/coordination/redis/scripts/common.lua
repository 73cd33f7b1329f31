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
-- message is lost while their subscriber reconnects.
local function announce_changed(version_key, channel, names)
  if #names == 0 then return end
  redis.call('INCR', version_key)
  redis.call('PUBLISH', channel, cjson.encode({ t = 'changed', names = names }))
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
      redis.call('INCR', version_key)
      redis.call('PUBLISH', channel, cjson.encode({ t = 'trigger', name = name, member = member, at = now }))
    end
  end
end
