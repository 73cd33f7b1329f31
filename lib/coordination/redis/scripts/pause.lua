-- Pauses a job cluster-wide: it leaves the due set until it is resumed.
-- KEYS: job hash, due zset, version.  ARGV: name, channel.  Returns 0 if the job is unknown, else 1.
local job_key, due_key, version_key = KEYS[1], KEYS[2], KEYS[3]
local name, channel = ARGV[1], ARGV[2]
if redis.call('EXISTS', job_key) == 0 then return 0 end
check_job(job_key)
redis.call('HSET', job_key, 'paused', '1')
redis.call('HDEL', job_key, 'base')
redis.call('ZREM', due_key, name)
announce_changed(version_key, channel, { name })
return 1
