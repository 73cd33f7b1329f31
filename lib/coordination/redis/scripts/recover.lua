-- Recovers runs whose replica died: their lease expired without a finish (the process was
-- killed, paused past its lease, or cut off from Redis). Each one, atomically and once (the
-- first replica to call this for it wins; the others find it 'gone'): the lease and its member
-- of the leases zset are removed, the job's fence is raised (a late checkpoint of the dead run
-- is refused from now on), the run is ended as 'abandoned' (its `last` run, if it is that run;
-- a run a 'queue-one' job queued behind it starts), and then either its next attempt is added
-- as a pending retry due now (the run's attempt is below `attempts`), counted in `recovered`,
-- or it is counted in `abandoned` (no attempt left: retry.attempts is 1 by default).
-- The caller gives `attempts` from the job's retry policy, which only the replicas know.
-- KEYS: leases zset, version, then per run: job hash, runs hash, the job's triggers zset.
-- ARGV: channel, then per run 3 values: name, fencing token, attempts allowed in all.
-- Returns { now, results }, with per run one of:
--   { 'recovered', next attempt, instance, scheduledAt, trigger, task id or '', first token, expiresAt }
--   { 'abandoned', attempt, instance, scheduledAt, trigger, task id or '', first token, expiresAt }
--   { 'alive', expiresAt } (its lease was renewed: the member's score is moved to its expiry)
--   { 'gone' } (ended meanwhile: finished, stopped, or recovered by another replica)
--   { 'lost' } (its lease is no longer kept: past the recovery grace; counted in `abandoned`)
--   { 'corrupt', key, what } (nothing is written for it)
local leases_key, version_key = KEYS[1], KEYS[2]
local channel = ARGV[1]
local now = now_ms()
local FIELDS = 3

local function recover(job_key, runs_key, triggers_key, name, token, attempts)
  local member = lease_member(name, token)
  if not redis.call('ZSCORE', leases_key, member) then return { 'gone' } end
  local raw, problem = read_key('hash', 'HGET', runs_key, token)
  if problem then return corrupt(runs_key, problem) end
  local lease = raw and decode_lease(raw)
  if raw and not lease then return corrupt(runs_key, 'its entry ' .. quoted(token) .. ' is not a run lease: ' .. quoted(raw)) end
  if lease and lease.e > now then
    redis.call('ZADD', leases_key, lease.e, member)
    return { 'alive', lease.e }
  end
  local job, bad = read_job(job_key, 'rev', 'fence')
  if bad then return corrupt(job_key, bad) end
  if not lease or not job[1] then
    -- What it ran is gone with its lease (or the job with Redis's state): nothing to start again.
    redis.call('ZREM', leases_key, member)
    if job[1] then redis.call('HINCRBY', job_key, 'abandoned', 1) end
    return { 'lost' }
  end
  local ending, key, what = read_run_end(job_key, triggers_key)
  if not ending then return corrupt(key, what) end
  local _, wrong = read_key('zset', 'ZCARD', triggers_key)
  if wrong then return corrupt(triggers_key, wrong) end
  redis.call('HDEL', runs_key, token)
  redis.call('ZREM', leases_key, member)
  -- Tokens after this one only: the dead run's late checkpoint writes are refused (checkpoint.lua
  -- refuses a token below the job's fence). Not raised to now: a run claimed since the lease
  -- expired (its token is above the dead one's, below now) must keep writing its checkpoints.
  redis.call('HSET', job_key, 'fence', string.format('%.0f', math.max(tonumber(job[2]) or 0, tonumber(token) + 1)))
  local attempt = lease.a or 1
  local again = attempt < attempts
  local err = 'its lease expired at ' .. number_text(lease.e) .. ' without a finish (replica "' .. lease.i .. '" died, was paused or was cut off); '
    .. (again and ('attempt ' .. number_text(attempt + 1) .. ' recovers it') or ('no attempt left (retry.attempts ' .. number_text(attempts) .. ')'))
  end_run(job_key, triggers_key, version_key, channel, name, token, 'abandoned', err, now, ending)
  local task = lease.x and number_text(lease.x) or ''
  local first = lease.o or tonumber(token)
  if again then
    add_retry(version_key, channel, triggers_key, name, token, lease, 0, now)
    redis.call('HINCRBY', job_key, 'recovered', 1)
    return { 'recovered', attempt + 1, lease.i, lease.s, lease.g, task, first, lease.e }
  end
  redis.call('HINCRBY', job_key, 'abandoned', 1)
  return { 'abandoned', attempt, lease.i, lease.s, lease.g, task, first, lease.e }
end

local results = {}
local n = (#ARGV - 1) / FIELDS
for i = 1, n do
  local a = 1 + (i - 1) * FIELDS
  local k = 3 + (i - 1) * 3
  results[i] = recover(KEYS[k], KEYS[k + 1], KEYS[k + 2], ARGV[a + 1], ARGV[a + 2], tonumber(ARGV[a + 3]))
end
return { now, results }
