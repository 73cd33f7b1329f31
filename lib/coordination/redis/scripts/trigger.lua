-- Requests a run of a job now. Requests with the same member coalesce while pending.
-- KEYS: job hash, the job's triggers zset, runs hash, version, request id key, request key.
-- ARGV: name, member, channel, id ttl (ms; '0' for requests meant to coalesce), max pending,
--       how long pending triggers are kept unclaimed (ms), request id, request ttl (ms).
-- Every accepted request keeps the job's pending triggers that long: a replica that has the
-- job claims them within milliseconds, so only a job no live replica declares keeps them that
-- long, and then loses them rather than piling them up forever.
-- What the request can already see decides it at once, and nothing is queued: the manual lock
-- ('skipped', 'locked'), or for overlap 'skip' a live run ('skipped', 'running'). A job with
-- max pending triggers (its dispatched tasks and retries not counted) refuses more ('full'), so
-- one caller cannot fill Redis.
-- A request with an id ttl leaves its id and answer behind for that long, so that the same
-- request sent twice (a client resending it after a reconnection) runs once, even if the first
-- was already claimed and removed, and gets the same answer.
-- Apart from that id (whose ttl is the caller's policy: a start run shares its id with every
-- replica for a minute), each call has a request id of its own, remembered for the request ttl,
-- so a resend much later than the id ttl still gets its first answer.
-- Returns { 'unknown' } | { 'full', pending } | { 'accepted', requestedAt }
--       | { 'skipped', 'locked' | 'running', holder, requestedAt }.
local job_key, triggers_key, runs_key, version_key, id_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local name, member, channel, id_ttl, max_pending = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local pending_ttl = tonumber(ARGV[6])
local request_key, request_id, request_ttl = KEYS[6], ARGV[7], tonumber(ARGV[8])
local replay = replayed(request_key, request_id)
if replay then return replay end
if redis.call('EXISTS', job_key) == 0 then return { 'unknown' } end
check_job(job_key, triggers_key)
if id_ttl > 0 then
  local seen = redis.call('GET', id_key)
  if seen then return cjson.decode(seen) end
end
local now = now_ms()
local answer
local holder = manual_lock_holder(job_key, now)
if holder then
  answer = { 'skipped', 'locked', holder, now }
elseif redis.call('HGET', job_key, 'overlap') == 'skip' then
  -- Running tasks of the job do not skip it (see scheduled_runs).
  local live = scheduled_runs(live_leases(runs_key, now))
  if #live > 0 then answer = { 'skipped', 'running', live[1][2].i, now } end
end
if not answer then
  local pending_since = redis.call('ZSCORE', triggers_key, member)
  if pending_since then
    answer = { 'accepted', tonumber(pending_since) }
  else
    local pending = redis.call('ZCARD', triggers_key)
    if pending >= max_pending then
      -- Dispatched tasks and pending retries share the set but are not callers' requests: a
      -- backlog of tasks must not refuse a trigger. Counted one by one only when the set is full.
      pending = 0
      for _, queued in ipairs(redis.call('ZRANGE', triggers_key, 0, -1)) do
        if not (string.find(queued, '\nEVENT\ntask:', 1, true) or string.find(queued, '\nretry:', 1, true)) then pending = pending + 1 end
      end
      if pending >= max_pending then return { 'full', pending } end
    end
    redis.call('ZADD', triggers_key, now, member)
    redis.call('PEXPIRE', triggers_key, pending_ttl)
    local v = redis.call('INCR', version_key)
    redis.call('PUBLISH', channel, cjson.encode({ t = 'trigger', name = name, member = member, at = now, v = v }))
    answer = { 'accepted', now }
  end
end
if id_ttl > 0 then redis.call('SET', id_key, cjson.encode(answer), 'PX', id_ttl) end
return remember(request_key, request_id, request_ttl, answer)
