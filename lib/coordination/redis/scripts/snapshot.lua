-- Reads what a replica needs to schedule its jobs, in one round trip whatever their number.
-- KEYS: due zset, triggers zset, then one job hash per job.  ARGV: the job names.
-- Returns { pending triggers (member, score, ...), per job: {} if missing, else
--           { rev, spec, overlap, paused, base, due } }.
local due_key, triggers_key = KEYS[1], KEYS[2]
local jobs = {}
for i = 1, #ARGV do
  local fields = redis.call('HMGET', KEYS[2 + i], 'rev', 'spec', 'overlap', 'paused', 'base')
  if not fields[1] then
    jobs[i] = {}
  else
    fields[5] = fields[5] or ''
    fields[6] = redis.call('ZSCORE', due_key, ARGV[i]) or ''
    jobs[i] = fields
  end
end
return { redis.call('ZRANGE', triggers_key, 0, -1, 'WITHSCORES'), jobs }
