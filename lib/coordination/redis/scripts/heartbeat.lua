-- Keeps a replica in the set of live replicas (or takes it out), and reads that set together
-- with the change version, so one call every few seconds is a replica's whole idle cost.
-- KEYS: replicas zset, version, epoch.  ARGV: instanceId, member ttl (ms), 'beat' | 'leave', channel.
-- Returns { version, live instance ids, epoch, now }. Joins and leaves are announced as 'members'.
-- The epoch is made once per life of the keys (Redis's time when a heartbeat found it missing):
-- a replica that sees it change knows Redis lost its state, even if the version counter, counted
-- again from zero, happens to read as the one it knew. `now` (Redis's clock) keeps each replica's
-- estimate of it.
local replicas_key, version_key, epoch_key = KEYS[1], KEYS[2], KEYS[3]
local instance, ttl, action, channel = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local now = now_ms()
local changed
if action == 'leave' then
  changed = redis.call('ZREM', replicas_key, instance)
else
  changed = redis.call('ZADD', replicas_key, now, instance)
end
changed = changed + redis.call('ZREMRANGEBYSCORE', replicas_key, '-inf', now - ttl)
if changed > 0 then redis.call('PUBLISH', channel, cjson.encode({ t = 'members' })) end
local epoch = redis.call('GET', epoch_key)
if not epoch then
  epoch = tostring(now)
  redis.call('SET', epoch_key, epoch)
end
return { redis.call('GET', version_key) or '0', redis.call('ZRANGE', replicas_key, 0, -1), epoch, now }
