-- Stops a run wherever it runs: revokes its lease and tells its replica to abort it. What a
-- finish would have done is done here, since the aborted run's replica no longer holds a lease
-- to finish: the last run is recorded as stopped, and a run queued behind it ('queue-one') starts.
-- Idempotent by request id: a stop sent again gets its first answer.
-- KEYS: job hash, runs hash, the job's triggers zset, version, request key, leases zset (see common.lua).
-- ARGV: name, fencing token, channel, request id, request ttl (ms).
-- Returns 1, or 0 if no live lease has that token (the run ended, or its replica died).
local job_key, runs_key, triggers_key, version_key, request_key, leases_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local name, token, channel, request_id, request_ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local seen = replayed(request_key, request_id)
if seen then return seen end
local now = now_ms()
local raw, problem = read_key('hash', 'HGET', runs_key, token)
if problem then raise_corrupt(runs_key, problem) end
if not raw then return remember(request_key, request_id, request_ttl, 0) end
local lease = decode_lease(raw)
if not lease then raise_corrupt(runs_key, 'its entry ' .. quoted(token) .. ' is not a run lease: ' .. quoted(raw)) end
local ending, key, what = read_run_end(job_key, triggers_key)
if not ending then raise_corrupt(key, what) end
redis.call('HDEL', runs_key, token)
-- Stopped, its run is not recovered: an expired lease's run (its replica died) ends here too.
redis.call('ZREM', leases_key, lease_member(name, token))
if lease.e <= now then return remember(request_key, request_id, request_ttl, 0) end
redis.call('PUBLISH', channel, cjson.encode({ t = 'cancel', name = name, token = tonumber(token), r = 'stopped' }))
end_run(job_key, triggers_key, version_key, channel, name, token, 'stopped', 'stopped by a caller', now, ending)
return remember(request_key, request_id, request_ttl, 1)
