-- Stops a run wherever it runs: revokes its lease and tells its replica to abort it. What a
-- finish would have done is done here, since the aborted run's replica no longer holds a lease
-- to finish: the last run is recorded as stopped, and a run queued behind it ('queue-one') starts.
-- KEYS: job hash, runs hash, the job's triggers zset, version. ARGV: name, fencing token, channel.
-- Returns 1, or 0 if no live lease has that token (the run ended, or its replica died).
local job_key, runs_key, triggers_key, version_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local name, token, channel = ARGV[1], ARGV[2], ARGV[3]
local now = now_ms()
local raw, problem = read_key('hash', 'HGET', runs_key, token)
if problem then raise_corrupt(runs_key, problem) end
if not raw then return 0 end
local lease = decode_lease(raw)
if not lease then raise_corrupt(runs_key, 'its entry ' .. quoted(token) .. ' is not a run lease: ' .. quoted(raw)) end
local ending, key, what = read_run_end(job_key, triggers_key)
if not ending then raise_corrupt(key, what) end
redis.call('HDEL', runs_key, token)
if lease.e <= now then return 0 end
redis.call('PUBLISH', channel, cjson.encode({ t = 'cancel', name = name, token = tonumber(token), r = 'stopped' }))
end_run(job_key, triggers_key, version_key, channel, name, token, 'stopped', 'stopped by a caller', now, ending)
return 1
