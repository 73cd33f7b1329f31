-- Releases a lock taken with lock.lua, if it is still held by the holder the caller saw (so a
-- late unlock cannot release a lock taken since), once per request id (so a resent one cannot
-- release a lock the same holder took again since).
-- KEYS: job hash, version, request key.  ARGV: name, holder, channel, request id, request ttl (ms).
-- Returns 0 if the job is unknown, else 1.
local job_key, version_key, request_key = KEYS[1], KEYS[2], KEYS[3]
local name, holder, channel, request_id, request_ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local seen = replayed(request_key, request_id)
if seen then return seen end
if redis.call('EXISTS', job_key) == 0 then return 0 end
check_job(job_key)
if redis.call('HGET', job_key, 'lockedBy') == holder then
  redis.call('HDEL', job_key, 'lockedBy', 'lockedUntil')
  announce_changed(version_key, channel, { name })
end
return remember(request_key, request_id, request_ttl, 1)
