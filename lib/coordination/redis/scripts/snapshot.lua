-- Reads what a replica needs to schedule its jobs, in one round trip whatever their number.
-- KEYS: due zset, then per job: job hash, runs hash, its triggers zset.
-- ARGV: instanceId, then the job names.
-- Returns { pending triggers of these jobs (member, score, ...), per job: {} if missing, else
--           { rev, spec, overlap, paused, base, due, definition, definedBy, own leases }, now }
-- where own leases are this instance's live leases as { token, lease JSON, ... }: runs it
-- claimed but may never have heard of (the claim's reply was lost with the connection).
-- Only the asked jobs' triggers are read (at most max pending each), never every job's.
local due_key = KEYS[1]
local instance = ARGV[1]
local now = now_ms()
local jobs = {}
local triggers = {}
for i = 1, #ARGV - 1 do
  local k = 2 + (i - 1) * 3
  local job_key, runs_key, triggers_key = KEYS[k], KEYS[k + 1], KEYS[k + 2]
  local fields = redis.call('HMGET', job_key, 'rev', 'spec', 'overlap', 'paused', 'base', 'def', 'defBy')
  if not fields[1] then
    jobs[i] = {}
  else
    local own = {}
    local runs = redis.call('HGETALL', runs_key)
    for r = 1, #runs, 2 do
      local lease = cjson.decode(runs[r + 1])
      if lease.i == instance and lease.e > now then
        own[#own + 1] = runs[r]
        own[#own + 1] = runs[r + 1]
      end
    end
    local due = redis.call('ZSCORE', due_key, ARGV[i + 1]) or ''
    jobs[i] = { fields[1], fields[2], fields[3], fields[4], fields[5] or '', due, fields[6], fields[7], own }
    local pending = redis.call('ZRANGE', triggers_key, 0, -1, 'WITHSCORES')
    for t = 1, #pending do triggers[#triggers + 1] = pending[t] end
  end
end
return { triggers, jobs, now }
