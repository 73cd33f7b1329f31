-- Stops a run wherever it runs: revokes its lease and tells its replica to abort it. What a
-- finish would have done is done here, since the aborted run's replica no longer holds a lease
-- to finish: the last run is recorded as stopped, and a run queued behind it ('queue-one') starts.
-- KEYS: job hash, runs hash, triggers zset, version. ARGV: name, fencing token, channel.
-- Returns 1, or 0 if no live lease has that token (the run ended, or its replica died).
local job_key, runs_key, triggers_key, version_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local name, token, channel = ARGV[1], ARGV[2], ARGV[3]
local now = now_ms()
local raw = redis.call('HGET', runs_key, token)
if not raw then return 0 end
redis.call('HDEL', runs_key, token)
if cjson.decode(raw).e <= now then return 0 end
redis.call('PUBLISH', channel, cjson.encode({ t = 'cancel', name = name, token = tonumber(token), r = 'stopped' }))
local job = redis.call('HMGET', job_key, 'last', 'queued')
if job[1] then
  local last = cjson.decode(job[1])
  if last.k == tonumber(token) then
    last.f, last.st, last.er = now, 'stopped', 'stopped by a caller'
    redis.call('HSET', job_key, 'last', cjson.encode(last))
  end
end
if job[2] == '1' then
  redis.call('HDEL', job_key, 'queued')
  local member = name .. '\nSCHEDULE\nqueued'
  if redis.call('ZADD', triggers_key, 'NX', now, member) == 1 then
    redis.call('INCR', version_key)
    redis.call('PUBLISH', channel, cjson.encode({ t = 'trigger', name = name, member = member, at = now }))
  end
end
return 1
