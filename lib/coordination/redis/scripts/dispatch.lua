-- Puts tasks where every replica with their job can take them: each task is a pending trigger of
-- its job, "name \n EVENT \n task:<task id>", scored with Redis's now, announced like any
-- trigger; any eligible replica claims it (claim.lua), and only one wins. Not capped by the
-- trigger limit (a fan-out of thousands of tasks is the point), and not refused by the manual
-- lock or a live run: tasks are governed by the job's `concurrency` when claimed.
-- All the tasks one replica dispatched in one tick go in one call.
-- KEYS: version, then per task: job hash, the job's triggers zset.
-- ARGV: channel, how long pending triggers are kept unclaimed (ms), then per task: name, task id.
-- Returns { now, per task 1 (pending), or 0 if the job is unknown }.
local version_key, channel, pending_ttl = KEYS[1], ARGV[1], tonumber(ARGV[2])
local now = now_ms()
local results = {}
for i = 1, (#ARGV - 2) / 2 do
  local job_key, triggers_key = KEYS[2 * i], KEYS[2 * i + 1]
  local name, task = ARGV[1 + 2 * i], ARGV[2 + 2 * i]
  if redis.call('EXISTS', job_key) == 0 then
    results[i] = 0
  else
    local _, wrong = read_key('zset', 'ZCARD', triggers_key)
    if wrong then raise_corrupt(triggers_key, wrong) end
    local member = name .. '\nEVENT\ntask:' .. task
    -- Sent again (a resend after a reconnection): the task is pending once.
    if redis.call('ZADD', triggers_key, 'NX', now, member) == 1 then
      if redis.call('PTTL', triggers_key) < pending_ttl then redis.call('PEXPIRE', triggers_key, pending_ttl) end
      local v = redis.call('INCR', version_key)
      redis.call('PUBLISH', channel, cjson.encode({ t = 'trigger', name = name, member = member, at = now, v = v }))
    end
    results[i] = 1
  end
end
return { now, results }
