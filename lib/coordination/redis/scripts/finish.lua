-- Ends a run: releases its lease, records its result, and starts the queued run of a
-- 'queue-one' job.
-- KEYS: job hash, runs hash, triggers zset.  ARGV: name, fencing token, status, error, channel.
-- Returns 1, or 0 if the lease was already lost (then nothing is written).
local job_key, runs_key, triggers_key = KEYS[1], KEYS[2], KEYS[3]
local name, token, status, err, channel = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local now = now_ms()
if redis.call('HDEL', runs_key, token) == 0 then return 0 end
if redis.call('HGET', job_key, 'lastToken') == token then
  redis.call('HSET', job_key, 'lastFinishedAt', now, 'lastStatus', status, 'lastError', err)
end
if redis.call('HGET', job_key, 'queued') == '1' then
  redis.call('HDEL', job_key, 'queued')
  local member = name .. '\nSCHEDULE\nqueued'
  if redis.call('ZADD', triggers_key, 'NX', now, member) == 1 then
    redis.call('PUBLISH', channel, cjson.encode({ t = 'trigger', name = name, member = member, at = now }))
  end
end
return 1
