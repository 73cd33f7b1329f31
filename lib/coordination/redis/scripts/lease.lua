-- Takes a run lease for a task dispatched to this replica: a run outside the job's schedule and
-- overlap policy, with a fencing token from the same counter as the job's scheduled runs.
-- Idempotent by request id: the same request sent again (a resend after a reconnection) gets
-- the lease it took the first time, never a second one.
-- KEYS: job hash, runs hash, request key, leases zset (see common.lua).
-- ARGV: instanceId, lockTtl (ms), task id, request id, request ttl (ms), job name.
-- Returns { fencingToken, startedAt }, or {} if the job is unknown.
local job_key, runs_key, request_key, leases_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local instance, ttl, task, request_id, request_ttl, name = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5]), ARGV[6]
local seen = replayed(request_key, request_id)
if seen then return seen end
local now = now_ms()
if redis.call('EXISTS', job_key) == 0 then return {} end
check_job(job_key)
local _, wrong = read_key('hash', 'HLEN', runs_key)
if wrong then raise_corrupt(runs_key, wrong) end
local fence = redis.call('HGET', job_key, 'fence')
local token = math.max((tonumber(fence) or 0) + 1, now)
redis.call('HSET', runs_key, token, cjson.encode({ i = instance, e = now + ttl, s = now, t = now, g = 'EVENT', x = task }))
keep_runs_until_leases_expire(runs_key, ttl)
redis.call('ZADD', leases_key, now + ttl, lease_member(name, string.format('%.0f', token)))
redis.call('HSET', job_key, 'fence', token)
return remember(request_key, request_id, request_ttl, { token, now })
