-- Sets a job's next fire, and optionally its schedule (updateSchedule) or its paused flag
-- (resume). The caller computed the next fire from revision `rev`; if the schedule has changed
-- since, or the job was paused or resumed since, nothing is written. A new schedule and a
-- resume bump the revision. Idempotent by request id: a resent request gets its first answer.
-- KEYS: job hash, due zset, version, request key.
-- ARGV: name, channel, rev, spec JSON ('' keeps it), resume ('1' | '0'), base, due ('' for none),
--       request id, request ttl (ms).
-- Returns 'ok' | 'stale' | 'unknown'; 'stale' also when the due time is not after the latest one
-- served (computed from a clock that is behind, it would run that fire again).
local job_key, due_key, version_key, request_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local name, channel, rev, spec, resume, base, due = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local request_id, request_ttl = ARGV[8], tonumber(ARGV[9])
local seen = replayed(request_key, request_id)
if seen then return seen end
if redis.call('EXISTS', job_key) == 0 then return 'unknown' end
check_job(job_key)
if redis.call('HGET', job_key, 'rev') ~= rev then return remember(request_key, request_id, request_ttl, 'stale') end
if due ~= '' and tonumber(due) <= served_due(job_key) then return remember(request_key, request_id, request_ttl, 'stale') end
if spec ~= '' then
  redis.call('HSET', job_key, 'spec', spec)
  redis.call('HINCRBY', job_key, 'rev', 1)
end
if resume == '1' and redis.call('HGET', job_key, 'paused') == '1' then
  redis.call('HSET', job_key, 'paused', '0')
  if spec == '' then redis.call('HINCRBY', job_key, 'rev', 1) end
end
if redis.call('HGET', job_key, 'paused') ~= '1' and due ~= '' then
  redis.call('ZADD', due_key, due, name)
  redis.call('HSET', job_key, 'base', base)
else
  redis.call('ZREM', due_key, name)
  redis.call('HDEL', job_key, 'base')
end
announce_changed(version_key, channel, { name })
return remember(request_key, request_id, request_ttl, 'ok')
