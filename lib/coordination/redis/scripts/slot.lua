-- Takes a slot lease of a continuous job (`continuous: { max }`): a run lease with its own
-- fencing token, refused while `max` live leases of the job exist. The count and the write are
-- one atomic step, so however the replicas' views of who is chosen differ, the job never has
-- more than `max` live leases. One per instance: an instance holding a live lease gets it back
-- (its earlier reply was lost), never a second one. Renewed by extend.lua, released by finish.lua.
-- KEYS: job hash, runs hash.  ARGV: instanceId, lockTtl (ms), max.
-- Returns { 'acquired' | 'held', token, startedAt, expiresAt }, { 'full', token, expiresAt,
-- instance, ... } (per live lease), { 'paused' } or { 'unknown' }.
local job_key, runs_key = KEYS[1], KEYS[2]
local instance, ttl, max = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local now = now_ms()
if redis.call('EXISTS', job_key) == 0 then return { 'unknown' } end
check_job(job_key)
if redis.call('HGET', job_key, 'paused') == '1' then return { 'paused' } end
local live = live_leases(runs_key, now)
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
