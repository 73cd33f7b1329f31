-- Takes a job's lock by hand, so that no replica runs it until it is unlocked (or `ttl` passes).
-- KEYS: job hash, runs hash, version.  ARGV: name, holder, ttl (ms, '0' for no expiry), channel.
-- Returns { 'locked' } | { 'running' | 'locked-by', holder } | { 'unknown' }.
local job_key, runs_key, version_key = KEYS[1], KEYS[2], KEYS[3]
local name, holder, ttl, channel = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
if redis.call('EXISTS', job_key) == 0 then return { 'unknown' } end
check_job(job_key)
local now = now_ms()
local live = live_leases(runs_key, now)
if #live > 0 then return { 'running', live[1][2].i } end
local current = manual_lock_holder(job_key, now)
if current and current ~= holder then return { 'locked-by', current } end
redis.call('HSET', job_key, 'lockedBy', holder, 'lockedUntil', ttl > 0 and (now + ttl) or 0)
announce_changed(version_key, channel, { name })
return { 'locked' }
