-- Keeps a replica in the set of live replicas (or takes it out), and reads that set together
-- with the change version, so one call every few seconds is a replica's whole idle cost.
-- KEYS: replicas zset, version.  ARGV: instanceId, member ttl (ms), 'beat' | 'leave', channel.
-- Returns { version, live instance ids, now }: now (Redis's clock) keeps each replica's estimate of it.
-- Joins and leaves are announced as 'members'.
local replicas_key, version_key = KEYS[1], KEYS[2]
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
return { redis.call('GET', version_key) or '0', redis.call('ZRANGE', replicas_key, 0, -1), now }
