-- Requests a run of a job now. Requests with the same member coalesce while pending.
-- KEYS: job hash, triggers zset, version, request id key.
-- ARGV: name, member, channel, id ttl (ms; '0' for requests meant to coalesce).
-- A request with an id ttl leaves its id behind for that long, so that the same request sent
-- twice (a client resending it after a reconnection) runs once even if the first was already
-- claimed and removed.
-- Returns 0 if the job is unknown, else 1.
local job_key, triggers_key, version_key, id_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local name, member, channel, id_ttl = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
if redis.call('EXISTS', job_key) == 0 then return 0 end
if id_ttl > 0 and not redis.call('SET', id_key, '1', 'NX', 'PX', id_ttl) then return 1 end
local now = now_ms()
if redis.call('ZADD', triggers_key, 'NX', now, member) == 1 then
  redis.call('INCR', version_key)
  redis.call('PUBLISH', channel, cjson.encode({ t = 'trigger', name = name, member = member, at = now }))
end
return 1
