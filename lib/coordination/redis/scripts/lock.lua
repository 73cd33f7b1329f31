-- Takes a job's lock by hand, so that no replica runs it until it is unlocked (or `ttl` passes).
-- Idempotent by request id: a resent lock gets its first answer and cannot take the lock again
-- after an unlock.
-- KEYS: job hash, runs hash, version, request key.
-- ARGV: name, holder, ttl (ms, '0' for no expiry), channel, request id, request ttl (ms).
-- Returns { 'locked' } | { 'running' | 'locked-by', holder } | { 'unknown' }.
local job_key, runs_key, version_key, request_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local name, holder, ttl, channel, request_id, request_ttl = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5], tonumber(ARGV[6])
local seen = replayed(request_key, request_id)
if seen then return seen end
if redis.call('EXISTS', job_key) == 0 then return { 'unknown' } end
check_job(job_key)
local now = now_ms()
-- Tasks of the job do not hold it: they are no run of its schedule (see scheduled_runs).
local live = scheduled_runs(live_leases(runs_key, now))
if #live > 0 then return remember(request_key, request_id, request_ttl, { 'running', live[1][2].i }) end
local current = manual_lock_holder(job_key, now)
if current and current ~= holder then return remember(request_key, request_id, request_ttl, { 'locked-by', current }) end
redis.call('HSET', job_key, 'lockedBy', holder, 'lockedUntil', ttl > 0 and (now + ttl) or 0)
announce_changed(version_key, channel, { name })
return remember(request_key, request_id, request_ttl, { 'locked' })
