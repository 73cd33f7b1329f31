-- Ends runs: releases each lease, records the run's result, and starts the queued run of a
-- 'queue-one' job. All the runs one replica ended in one tick go in one call.
-- KEYS: version, then per run: job hash, runs hash, the job's triggers zset.
-- ARGV: channel, then per run 4 values: name, fencing token, status, error.
-- Returns per run 1, or 0 if its lease was already lost (then nothing is written for it), or
-- { 'corrupt', key, what } if a key of the job holds what no script wrote (nothing is written).
-- A finish sent again (its reply lost) finds its lease gone but the job's last run already
-- recorded with this token and status: it answers 1 again, and writes nothing more.
local version_key, channel = KEYS[1], ARGV[1]
local now = now_ms()
local FIELDS = 4

local function finish(job_key, runs_key, triggers_key, name, token, status, err)
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
  redis.call('HDEL', runs_key, token)
  end_run(job_key, triggers_key, version_key, channel, name, token, status, err, now, ending)
  return 1
end

local results = {}
local n = (#ARGV - 1) / FIELDS
for i = 1, n do
  local a = 1 + (i - 1) * FIELDS
  local k = 2 + (i - 1) * 3
  results[i] = finish(KEYS[k], KEYS[k + 1], KEYS[k + 2], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4])
end
return results
