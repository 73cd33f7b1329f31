-- Pauses a job cluster-wide: it leaves the due set until it is resumed. Pausing bumps the
-- revision, so a resume computed before it (a late or resent one) is refused as stale.
-- Idempotent by request id.
-- KEYS: job hash, due zset, version, request key.  ARGV: name, channel, request id, request ttl (ms).
-- Returns 0 if the job is unknown, else 1.
local job_key, due_key, version_key, request_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local name, channel, request_id, request_ttl = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local seen = replayed(request_key, request_id)
if seen then return seen end
if redis.call('EXISTS', job_key) == 0 then return 0 end
check_job(job_key)
if redis.call('HGET', job_key, 'paused') ~= '1' then
  redis.call('HSET', job_key, 'paused', '1')
  redis.call('HINCRBY', job_key, 'rev', 1)
end
redis.call('HDEL', job_key, 'base')
redis.call('ZREM', due_key, name)
announce_changed(version_key, channel, { name })
return remember(request_key, request_id, request_ttl, 1)
