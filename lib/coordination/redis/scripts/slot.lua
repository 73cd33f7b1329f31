-- Takes a slot lease of a continuous job (`continuous: { max }`): a run lease with its own
-- fencing token, refused while `max` live leases of the job exist. The count and the write are
-- one atomic step, so however the replicas' views of who is chosen differ, the job never has
-- more than `max` live leases. One per instance: an instance holding a live lease gets it back
-- (its earlier reply was lost), never a second one. Renewed by extend.lua, released by finish.lua.
--
-- A lease counts only while its holder's cluster session lives (heartbeat.lua's sessions zset):
-- a holder that stopped heartbeating for its session TTL (killed, paused, cut off) has its lease
-- revoked here, announced as a cancel, so its slot goes to a live replica within the session TTL
-- rather than after lockTtl. The holder, if it comes back, has its renewals refused; it stops
-- its run by itself before then (its session lapses on its own clock no later than here). For
-- the same reason only a caller whose own session lives is given a slot.
-- A revoked lease leaves the leases zset too (extend.lua put it there), as any ended run's: it
-- is no dead run to recover.
-- KEYS: job hash, runs hash, sessions zset, leases zset.  ARGV: name, instanceId, lockTtl (ms), max, channel.
-- Returns { 'acquired' | 'held', token, startedAt, expiresAt }, { 'full', token, expiresAt,
-- instance, ... } (per live lease), { 'no-session' }, { 'paused' } or { 'unknown' }.
local job_key, runs_key, sessions_key, leases_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local name, instance, ttl, max, channel = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local now = now_ms()
if redis.call('EXISTS', job_key) == 0 then return { 'unknown' } end
check_job(job_key)
local _, wrong = read_key('zset', 'ZCARD', sessions_key)
if wrong then raise_corrupt(sessions_key, wrong) end
if redis.call('HGET', job_key, 'paused') == '1' then return { 'paused' } end

local function session_lives(who)
  local expiry = tonumber(redis.call('ZSCORE', sessions_key, who))
  return expiry ~= nil and expiry > now
end

if not session_lives(instance) then return { 'no-session' } end
local live = {}
for _, lease in ipairs(live_leases(runs_key, now)) do
  if session_lives(lease[2].i) then
    live[#live + 1] = lease
  else
    redis.call('HDEL', runs_key, lease[1])
    redis.call('ZREM', leases_key, lease_member(name, lease[1]))
    redis.call('PUBLISH', channel, cjson.encode({ t = 'cancel', name = name, token = tonumber(lease[1]) }))
  end
end
for _, lease in ipairs(live) do
  if lease[2].i == instance then return { 'held', tonumber(lease[1]), lease[2].t, lease[2].e } end
end
if #live >= max then
  local reply = { 'full' }
  for _, lease in ipairs(live) do
    reply[#reply + 1] = tonumber(lease[1])
    reply[#reply + 1] = lease[2].e
    reply[#reply + 1] = lease[2].i
  end
  return reply
end
local token = math.max((tonumber(redis.call('HGET', job_key, 'fence')) or 0) + 1, now)
redis.call('HSET', runs_key, token, cjson.encode({ i = instance, e = now + ttl, s = now, t = now, g = 'EVENT' }))
keep_runs_until_leases_expire(runs_key, ttl)
redis.call('HSET', job_key, 'fence', token)
return { 'acquired', token, now, now + ttl }
