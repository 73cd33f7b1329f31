-- Reads what a replica needs to schedule its jobs, in one round trip whatever their number.
-- KEYS: due zset, triggers zset, then one job hash per job.  ARGV: the job names.
-- Returns { pending triggers (member, score, ...), per job: {} if missing, else
--           { rev, spec, overlap, paused, base, due, definition, definedBy } }.
local due_key, triggers_key = KEYS[1], KEYS[2]
local jobs = {}
for i = 1, #ARGV do
  local fields = redis.call('HMGET', KEYS[2 + i], 'rev', 'spec', 'overlap', 'paused', 'base', 'def', 'defBy')
  if not fields[1] then
    jobs[i] = {}
  else
    local due = redis.call('ZSCORE', due_key, ARGV[i]) or ''
    jobs[i] = { fields[1], fields[2], fields[3], fields[4], fields[5] or '', due, fields[6], fields[7] }
  end
end
return { redis.call('ZRANGE', triggers_key, 0, -1, 'WITHSCORES'), jobs }
