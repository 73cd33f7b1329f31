-- Sets a job's next fire, and optionally its schedule (updateSchedule) or its paused flag
-- (resume). The caller computed the next fire from revision `rev`; if the schedule has changed
-- since, nothing is written.
-- KEYS: job hash, due zset, version.
-- ARGV: name, channel, rev, spec JSON ('' keeps it), resume ('1' | '0'), base, due ('' for none).
-- Returns 'ok' | 'stale' | 'unknown'; 'stale' also when the due time is not after the latest one
-- served (computed from a clock that is behind, it would run that fire again).
local job_key, due_key, version_key = KEYS[1], KEYS[2], KEYS[3]
local name, channel, rev, spec, resume, base, due = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
if redis.call('EXISTS', job_key) == 0 then return 'unknown' end
if redis.call('HGET', job_key, 'rev') ~= rev then return 'stale' end
if due ~= '' and tonumber(due) <= served_due(job_key) then return 'stale' end
if spec ~= '' then
  redis.call('HSET', job_key, 'spec', spec)
  redis.call('HINCRBY', job_key, 'rev', 1)
end
if resume == '1' then redis.call('HSET', job_key, 'paused', '0') end
if redis.call('HGET', job_key, 'paused') ~= '1' and due ~= '' then
  redis.call('ZADD', due_key, due, name)
  redis.call('HSET', job_key, 'base', base)
else
  redis.call('ZREM', due_key, name)
  redis.call('HDEL', job_key, 'base')
end
announce_changed(version_key, channel, { name })
return 'ok'
