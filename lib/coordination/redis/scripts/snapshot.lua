-- Reads what a replica needs to schedule its jobs, in one round trip whatever their number.
-- KEYS: due zset, then per job: job hash, runs hash, its triggers zset.
-- ARGV: instanceId, then the job names.
-- Returns { pending triggers of these jobs (member, score, ...), per job: {} if missing,
--           { 'corrupt', key, what } if a key of it holds what no script wrote, else
--           { rev, spec, overlap, paused, base, due, definition, definedBy, own leases }, now }
-- where own leases are this instance's live leases as { token, lease JSON, ... }: runs it
-- claimed but may never have heard of (the claim's reply was lost with the connection).
-- Only the asked jobs' triggers are read (at most max pending each), never every job's.
local due_key = KEYS[1]
local instance = ARGV[1]
local now = now_ms()
local jobs = {}
local triggers = {}

local function read(job_key, runs_key, triggers_key, name)
  -- Every field another script checks is checked here too, so that a job a claim or a finish
  -- finds corrupt is not taken back as sound by the snapshot that follows.
  local fields, problem = read_job(job_key, 'rev', 'spec', 'overlap', 'paused', 'base', 'def', 'defBy',
    'fence', 'lockedUntil', 'lateSkips', 'last')
  if problem then return corrupt(job_key, problem) end
  if not fields[1] then return {} end
  if not OVERLAPS[fields[3]] then return corrupt(job_key, 'its field "overlap" is not an overlap policy: ' .. quoted(fields[3])) end
  if fields[11] then
    local ok, last = pcall(cjson.decode, fields[11])
    if not ok or type(last) ~= 'table' then return corrupt(job_key, 'its field "last" is not a run: ' .. quoted(fields[11])) end
  end
  local leases, bad_lease = read_leases(runs_key)
  if bad_lease then return corrupt(runs_key, bad_lease) end
  local pending, wrong = read_key('zset', 'ZRANGE', triggers_key, 0, -1, 'WITHSCORES')
  if wrong then return corrupt(triggers_key, wrong) end
  local own = {}
  for _, lease in ipairs(leases) do
    if lease[2].i == instance and lease[2].e > now then
      own[#own + 1] = lease[1]
      own[#own + 1] = lease[3]
    end
  end
  for t = 1, #pending do triggers[#triggers + 1] = pending[t] end
  local due = redis.call('ZSCORE', due_key, name) or ''
  return { fields[1], fields[2] or '', fields[3] or '', fields[4] or '', fields[5] or '', due, fields[6] or '', fields[7] or '', own }
end

for i = 1, #ARGV - 1 do
  local k = 2 + (i - 1) * 3
  jobs[i] = read(KEYS[k], KEYS[k + 1], KEYS[k + 2], ARGV[i + 1])
end
return { triggers, jobs, now }
