-- Releases a lock taken with lock.lua, whoever took it.
-- KEYS: job hash, version.  ARGV: name, channel.  Returns 0 if the job is unknown, else 1.
local job_key, version_key = KEYS[1], KEYS[2]
local name, channel = ARGV[1], ARGV[2]
if redis.call('EXISTS', job_key) == 0 then return 0 end
redis.call('HDEL', job_key, 'lockedBy', 'lockedUntil')
announce_changed(version_key, channel, { name })
return 1
