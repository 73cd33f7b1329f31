-- Requests a run of a job now. Requests with the same member coalesce while pending.
-- KEYS: job hash, triggers zset, version.  ARGV: name, member, channel.
-- Returns 0 if the job is unknown, else 1.
local job_key, triggers_key, version_key = KEYS[1], KEYS[2], KEYS[3]
local name, member, channel = ARGV[1], ARGV[2], ARGV[3]
if redis.call('EXISTS', job_key) == 0 then return 0 end
local now = now_ms()
if redis.call('ZADD', triggers_key, 'NX', now, member) == 1 then
  redis.call('INCR', version_key)
  redis.call('PUBLISH', channel, cjson.encode({ t = 'trigger', name = name, member = member, at = now }))
end
return 1
