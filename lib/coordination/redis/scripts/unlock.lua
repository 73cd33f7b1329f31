-- Releases a lock taken with lock.lua, if it is still held by the holder the caller saw (so a
-- resent or late unlock cannot release a lock taken since).
-- KEYS: job hash, version.  ARGV: name, holder, channel.
-- Returns 0 if the job is unknown, else 1.
local job_key, version_key = KEYS[1], KEYS[2]
local name, holder, channel = ARGV[1], ARGV[2], ARGV[3]
if redis.call('EXISTS', job_key) == 0 then return 0 end
check_job(job_key)
if redis.call('HGET', job_key, 'lockedBy') == holder then
  redis.call('HDEL', job_key, 'lockedBy', 'lockedUntil')
  announce_changed(version_key, channel, { name })
end
return 1
