-- Ends runs: releases each lease, records the run's result, and starts the queued run of a
-- 'queue-one' job. All the runs one replica ended in one tick go in one call.
-- KEYS: version, leases zset (see common.lua), then per run: job hash, runs hash, the job's triggers zset.
-- ARGV: channel, then per run 5 values: name, fencing token, status, error, retry delay in ms
--       ('' for none: the replica decided, from the job's retry policy, that the run is retried).
-- A retry is written in the same step as the lease is released, so it survives the replica: a
-- pending trigger of the job, "name \n trigger \n retry:<attempt>:<scheduledAt>:<first token>:<task id>",
-- scored with its not-before time (Redis's now + the delay), announced like any trigger; any
-- replica with the job claims it then (claim.lua). Only while the lease is the run's: a run that
-- lost it (another took the job) is not retried.
-- Returns per run 1, or 0 if its lease was already lost (then nothing is written for it), or
-- { 'corrupt', key, what } if a key of the job holds what no script wrote (nothing is written).
-- A finish sent again (its reply lost) finds its lease gone but the job's last run already
-- recorded with this token and status: it answers 1 again, and writes nothing more.
-- A lease that expired but is still kept for recovery (common.lua) is released as a live one:
-- the first of the run's finish and recover.lua ends the run; the other finds nothing to end.
local version_key, leases_key, channel = KEYS[1], KEYS[2], ARGV[1]
local now = now_ms()
local FIELDS = 5

local function finish(job_key, runs_key, triggers_key, name, token, status, err, retry)
  local lease, problem = read_key('hash', 'HGET', runs_key, token)
  if problem then return corrupt(runs_key, problem) end
  if not lease then
    local last = redis.call('HGET', job_key, 'last')
    if last and string.find(last, '"k":' .. token, 1, true) then
      local ok, decoded = pcall(cjson.decode, last)
      if ok and type(decoded) == 'table' and decoded.k == tonumber(token) and decoded.f and decoded.st == status then return 1 end
    end
    return 0
  end
  local ending, key, what = read_run_end(job_key, triggers_key)
  if not ending then return corrupt(key, what) end
  if retry ~= '' then
    local _, wrong = read_key('zset', 'ZCARD', triggers_key)
    if wrong then return corrupt(triggers_key, wrong) end
  end
  redis.call('HDEL', runs_key, token)
  redis.call('ZREM', leases_key, lease_member(name, token))
  end_run(job_key, triggers_key, version_key, channel, name, token, status, err, now, ending)
  if retry ~= '' then add_retry(version_key, channel, triggers_key, name, token, cjson.decode(lease), tonumber(retry), now) end
  return 1
end

local results = {}
local n = (#ARGV - 1) / FIELDS
for i = 1, n do
  local a = 1 + (i - 1) * FIELDS
  local k = 3 + (i - 1) * 3
  results[i] = finish(KEYS[k], KEYS[k + 1], KEYS[k + 2], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], ARGV[a + 5])
end
return results
