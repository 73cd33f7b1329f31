-- Claims due fires and pending triggers. The first replica whose claim arrives runs the fire;
-- every other claim of it finds the due time moved on and gets the new one back.
-- KEYS: due zset, leases zset (every lease's expiry: see common.lua), then per request: job hash, runs hash,
--       the job's triggers zset, its checkpoint hash.
-- ARGV: instanceId, lockTtl (ms), channel, then per request 13 values:
--       name, kind ('due' | 'trigger'), expected due or trigger member, schedule revision,
--       next base ('' for none), next due ('' for none), threshold in ms ('' for none),
--       the job's task concurrency ('' for no limit; read for a task's claim only),
--       then the replica's plan for missed due times ('' in all five for an ordinary claim):
--       serve (the due time the run serves, 'none' for no run), catch-up ('1' if that due time
--       was missed), skipped (missed due times consumed without a run), through (the latest due
--       time consumed: the `served` watermark), episode end (the latest missed due time).
--       A plan is checked against what Redis knows: serve and through between the expected due
--       time and now, after `served`, and the next due time after through; else 'stale'.
-- A pending retry (a trigger whose id is "retry:<attempt>:<scheduledAt>:<first token>:<task id or ''>",
-- written by finish.lua) is claimed like any trigger, except that: it is not claimable before its
-- score (the not-before time: 'early'), the run serves the due time in its id, its lease carries
-- the attempt (`a`) and the first attempt's token (`o`), and a task's retry (`x`, the task) is
-- taken outside the manual lock and the overlap policy, as a dispatched task's first attempt is,
-- writes no `last` run and raises no checkpoint fence.
-- A dispatched task (a trigger whose id is "task:<task id>", written by dispatch.lua) is taken
-- the same way as a task's retry, first attempt: outside the manual lock and the overlap policy
-- (a job's scheduled fires and its tasks never see each other's leases), within the job's
-- `concurrency`: while that many task leases of the job live, the claim answers 'busy' (the
-- earliest of them to expire) and consumes nothing.
-- Returns { now, results } (now by Redis's clock, for the replica's estimate of it), with per
-- request one of:
--   { 'claimed', fencingToken, scheduledAt, startedAt, trigger, flags, retry [, checkpoint state, savedAt, token] }
--     (flags: 1 a catch-up run, + 2 if it continues a catch-up episode already under way)
--     (retry: '' for a first attempt, "::task id" for a task's first attempt, else "attempt:first token:task id or ''")
--     (the job's checkpoint, if it has one, read in the same step: the run starts with it at no
--     extra round trip; and the claim raises the checkpoint's fence `f` to the new token, so no
--     earlier run can overwrite it from then on. A job that never checkpointed has no such hash.)
--   { 'moved', due or -1, base or -1, rev } | { 'early', waitMs }
--   { 'stale' } (the schedule changed since `rev`, or the next due time is not after the one served)
--   { 'skipped', 'running' | 'locked', holder, scheduledAt } | { 'queued', holder, scheduledAt }
--   { 'late', scheduledAt, lateMs } (a due fire later than the threshold: skipped, counted in lateSkips)
--   { 'missed', skipped, through } (a plan that runs nothing: consumed, counted in missedSkips)
--   { 'busy', holder, expiresAt } (a catch-up claim while a run of the job lives, or a due claim
--     while a catch-up run lives: nothing consumed; claimed again when that run ends)
--   { 'missing' } | { 'gone' }
--   { 'corrupt', key, what } (a key of the job holds what no script wrote: nothing is written for it)
-- Every claim of a fire but the first takes three reads, so losing replicas cost Redis little.
-- Idempotent: each lease names the fire it was claimed for (`r`, the expected due time or the
-- trigger member), so a claim sent again by the replica that won it (its reply was lost or timed
-- out, and ioredis or the replica sent it again) gets the same 'claimed' answer while the lease
-- lives, instead of 'moved' or 'gone' and an orphan lease that blocks the job.
local due_key, leases_key = KEYS[1], KEYS[2]
local instance, ttl, channel = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local now = now_ms()
local FIELDS = 13
-- The lease and `last` JSON are written by hand: cjson.encode is several times slower, and a
-- claim of 1,000 fires due together runs this for each. Only the instance id needs escaping.
local instance_json = cjson.encode(instance)
local now_text = tostring(now)
local expires_text = tostring(now + ttl)

-- Appends the job's checkpoint (HMGET of its hash: s, at, k, f) to a 'claimed' reply.
local function with_checkpoint(reply, checkpoint)
  if checkpoint and checkpoint[1] then
    reply[8], reply[9], reply[10] = checkpoint[1], tonumber(checkpoint[2]) or 0, tonumber(checkpoint[3]) or 0
  end
  return reply
end

-- The 'claimed' reply's retry element: which attempt a lease is, of which first attempt, for which task.
local function retry_text(attempt, first, task)
  if not attempt then return task and ('::' .. tostring(task)) or '' end
  return tostring(attempt) .. ':' .. tostring(first) .. ':' .. (task and tostring(task) or '')
end

local function already_won(runs_key, expected, checkpoint_key)
  -- A plain search first (extend.lua re-encodes leases, so the order of fields varies).
  local mine, fire = '"i":' .. instance_json, '"r":' .. cjson.encode(expected)
  -- A runs key that is not a hash, or an entry that is not JSON, is no claim of ours: the checks
  -- that follow report it as corrupt.
  local flat = redis.pcall('HGETALL', runs_key)
  if type(flat) ~= 'table' or flat.err then return nil end
  for i = 1, #flat, 2 do
    local raw = flat[i + 1]
    if string.find(raw, mine, 1, true) and string.find(raw, fire, 1, true) then
      local ok, lease = pcall(cjson.decode, raw)
      if ok and type(lease) == 'table' and lease.i == instance and lease.r == expected and tonumber(lease.e) and lease.e > now then
        -- A checkpoint hash of the wrong type is reported by the next claim or save, not here.
        local checkpoint = read_key('hash', 'HMGET', checkpoint_key, 's', 'at', 'k')
        -- A resend: whoever sent it first already began the episode, if any.
        return with_checkpoint({ 'claimed', tonumber(flat[i]), lease.s, lease.t, lease.g, lease.c == 1 and 3 or 0, retry_text(lease.a, lease.o, lease.x) }, checkpoint)
      end
    end
  end
  return nil
end

local function claim(job_key, runs_key, triggers_key, checkpoint_key, name, kind, expected, rev, next_base, next_due, threshold,
                     concurrency, serve, catch_up, skipped, through, episode_to)
  -- Everything the claim reads of the job is read and checked before anything is written, so a
  -- corrupt key stops this job only, and leaves no lease or last run behind for it.
  local job, problem = read_job(job_key, 'rev', 'paused', 'overlap', 'fence', 'lockedBy', 'lockedUntil', 'queued', 'base', 'lateSkips', 'served',
    'missedSkips', 'catchUps', 'catchUpTo')
  if problem then return corrupt(job_key, problem) end
  local scheduled_at, trigger
  -- A pending retry: its attempt, first token and task (nil for any other claim), and its not-before time.
  local retry_attempt, retry_first, retry_task, retry_at
  -- A dispatched task's first attempt: its task id (nil for any other claim).
  local dispatched_task
  if kind == 'due' then
    local due = tonumber(redis.call('ZSCORE', due_key, name))
    if due ~= tonumber(expected) then
      if not job[1] then return { 'missing' } end
      local won = already_won(runs_key, expected, checkpoint_key)
      if won then return won end
      return { 'moved', due or -1, tonumber(job[8]) or -1, tonumber(job[1]) }
    end
    scheduled_at, trigger = due, 'SCHEDULE'
  else
    local requested, wrong = read_key('zset', 'ZSCORE', triggers_key, expected)
    if wrong then return corrupt(triggers_key, wrong) end
    if not requested then return already_won(runs_key, expected, checkpoint_key) or { 'gone' } end
    -- A trigger member is "name \n trigger \n id".
    scheduled_at, trigger = tonumber(requested), string.match(expected, '\n([^\n]*)\n')
    local a, s, o, x = string.match(expected, '\nretry:(%d+):(%-?%d+):(%d+):(%d*)$')
    if a then
      retry_attempt, retry_first, retry_task, retry_at = tonumber(a), tonumber(o), tonumber(x), scheduled_at
      scheduled_at = tonumber(s)
    end
    dispatched_task = tonumber(string.match(expected, '\ntask:(%d+)$'))
  end
  -- A task's attempt, first or retry: outside the lock and the overlap policy, within `concurrency`.
  local task = retry_task or dispatched_task

  if not job[1] then return { 'missing' } end
  if tonumber(job[1]) ~= rev then return { 'stale' } end
  if kind == 'due' and scheduled_at > now then return { 'early', scheduled_at - now } end
  if retry_at and retry_at > now then return { 'early', retry_at - now } end
  if not OVERLAPS[job[3]] then return corrupt(job_key, 'its field "overlap" is not an overlap policy: ' .. quoted(job[3])) end
  local leases, bad_lease = read_leases(runs_key)
  if bad_lease then return corrupt(runs_key, bad_lease) end
  local served_before = tonumber(job[10]) or 0
  -- The replica's plan for missed due times: it serves `serve` (not the expected due time) or
  -- nothing, and consumes every due time up to `through`. Never one served already, never one
  -- that has not come.
  local planned = kind == 'due' and serve ~= ''
  local runs_nothing = planned and serve == 'none'
  local through_at = scheduled_at
  local is_catch_up = planned and catch_up == '1'
  -- A due time an earlier catch-up claim planned (the next of an `all` episode, up to its end
  -- `catchUpTo`) is a catch-up run even when claimed as an ordinary fire: the replica that claims
  -- it may find it within its grace (the episode's latest due time, claimed soon after it came).
  local episode_end = tonumber(job[13])
  if kind == 'due' and not planned and episode_end and scheduled_at <= episode_end then is_catch_up = true end
  if planned then
    through_at = tonumber(through)
    if not through_at or through_at < scheduled_at or through_at > now or through_at <= served_before then return { 'stale' } end
    if not runs_nothing then
      local serve_at = tonumber(serve)
      if not serve_at or serve_at < scheduled_at or serve_at > through_at or serve_at <= served_before then return { 'stale' } end
      scheduled_at = serve_at
    end
  end
  -- A next due time computed from a clock that is behind could be one already served: it would
  -- run twice. Refused: the replica reads the job again and computes it anew.
  if next_due ~= '' then
    local next_at = tonumber(next_due)
    if next_at <= served_before or (kind == 'due' and next_at <= through_at) then return { 'stale' } end
  end
  -- Catch-up runs go one at a time: a catch-up waits for any run of the job, and a due fire waits
  -- for a catch-up run. Nothing is consumed; the replica claims again when that run has ended.
  if kind == 'due' and not runs_nothing then
    local holder
    local runs = scheduled_runs(leases)
    for _, lease in ipairs(runs) do
      if lease[2].e > now and (is_catch_up or lease[2].c == 1) then holder = lease[2] break end
    end
    if not holder and is_catch_up then
      for _, lease in ipairs(runs) do if lease[2].e > now then holder = lease[2] break end end
    end
    if holder then return { 'busy', holder.i, holder.e } end
  end
  -- One HMGET of a key that does not exist for a job that never checkpointed.
  local checkpoint, bad_checkpoint = read_key('hash', 'HMGET', checkpoint_key, 's', 'at', 'k', 'f')
  if bad_checkpoint then return corrupt(checkpoint_key, bad_checkpoint) end

  -- The fire is consumed from here on, whether it runs or not: the trigger is removed, the due
  -- time moves to the next one, and `fields` (if any) are written with the new base. A manual
  -- trigger restarts the period only if it runs (`runs`): one skipped or queued leaves it alone.
  local function advance(fields, runs)
    if kind == 'trigger' then redis.call('ZREM', triggers_key, expected) end
    if kind == 'due' then
      fields = fields or {}
      fields[#fields + 1] = 'served'
      fields[#fields + 1] = tostring(through_at)
      if planned and tonumber(skipped) and tonumber(skipped) > 0 then redis.call('HINCRBY', job_key, 'missedSkips', tonumber(skipped)) end
    end
    if next_base ~= '' and job[2] ~= '1' and (kind == 'due' or runs) then
      redis.call('ZADD', due_key, next_due, name)
      fields = fields or {}
      fields[#fields + 1] = 'base'
      fields[#fields + 1] = next_base
    end
    if fields then redis.call('HSET', job_key, unpack(fields)) end
  end

  if runs_nothing then
    advance(nil)
    return { 'missed', tonumber(skipped) or 0, through_at }
  end

  -- Judged on Redis's clock, so a replica's skew cannot make a fire look late or on time. For a
  -- planned claim, on the due time the run would serve: no run starts later than the threshold.
  if kind == 'due' and threshold ~= '' and now - scheduled_at > tonumber(threshold) then
    redis.call('HINCRBY', job_key, 'lateSkips', 1)
    advance(nil)
    return { 'late', scheduled_at, now - scheduled_at }
  end

  -- The job's tasks run at most `concurrency` at once, across the cluster: nothing is consumed;
  -- the task is claimed again when one of them ends (at once by the replica that ran it, by the
  -- others when the earliest of those leases would expire).
  if task and concurrency ~= '' then
    local holder, running = nil, 0
    for _, lease in ipairs(leases) do
      if lease[2].x ~= nil and lease[2].e > now then
        running = running + 1
        if not holder or lease[2].e < holder.e then holder = lease[2] end
      end
    end
    if running >= tonumber(concurrency) then return { 'busy', holder.i, holder.e } end
  end

  local locked_by = job[5]
  if locked_by and not task then
    local locked_until = tonumber(job[6]) or 0
    if locked_until == 0 or locked_until > now then
      advance(nil)
      return { 'skipped', 'locked', locked_by, scheduled_at }
    end
    redis.call('HDEL', job_key, 'lockedBy', 'lockedUntil')
  end

  local overlap = job[3]
  -- The overlap policy sees the job's scheduled runs only, never its tasks (scheduled_runs).
  local live = scheduled_runs(drop_expired(runs_key, leases, now))
  -- A run queued behind a holder that died (its lease expired unfinished) is dropped.
  if #live == 0 and job[7] == '1' then redis.call('HDEL', job_key, 'queued') end
  if #live > 0 and overlap ~= 'allow' and not task then
    local holder = live[1][2].i
    if overlap == 'skip' then
      advance(nil)
      return { 'skipped', 'running', holder, scheduled_at }
    elseif overlap == 'queue-one' then
      advance({ 'queued', '1' })
      return { 'queued', holder, scheduled_at }
    end
    -- cancel-previous: revoke the running leases; their replicas abort when told, or at the
    -- latest when their next lease extension finds the lease gone.
    for _, lease in ipairs(live) do
      redis.call('HDEL', runs_key, lease[1])
      redis.call('ZREM', leases_key, lease_member(name, lease[1]))
      redis.call('PUBLISH', channel, cjson.encode({ t = 'cancel', name = name, token = tonumber(lease[1]) }))
    end
  end

  -- Never below the clock, so tokens keep increasing even if Redis loses the counter.
  local token = math.max((tonumber(job[4]) or 0) + 1, now)
  local token_text = tostring(token)
  local common = '"i":' .. instance_json .. ',"s":' .. tostring(scheduled_at) .. ',"t":' .. now_text .. ',"g":"' .. trigger .. '"'
  local flags = 0
  local fields = { 'fence', token_text }
  local lease_extra = ''
  if retry_attempt then
    lease_extra = ',"a":' .. tostring(retry_attempt) .. ',"o":' .. tostring(retry_first)
    if retry_task then lease_extra = lease_extra .. ',"x":' .. tostring(retry_task) end
  elseif dispatched_task then
    lease_extra = ',"x":' .. tostring(dispatched_task)
  end
  if is_catch_up then
    common = common .. ',"c":1'
    -- An episode continues while its next catch-up due time is one an earlier claim planned.
    flags = (episode_end or -1) >= tonumber(expected) and 3 or 1
    redis.call('HINCRBY', job_key, 'catchUps', 1)
    if planned then fields[#fields + 1], fields[#fields + 2] = 'catchUpTo', episode_to end
  end
  redis.call('HSET', runs_key, token_text, '{' .. common .. lease_extra .. ',"e":' .. expires_text .. ',"r":' .. cjson.encode(expected) .. '}')
  keep_runs_until_leases_expire(runs_key, ttl)
  redis.call('ZADD', leases_key, now + ttl, lease_member(name, token_text))
  -- A task's attempts are no job run: no `last`, no checkpoint fence.
  if not task then fields[#fields + 1], fields[#fields + 2] = 'last', '{' .. common .. lease_extra .. ',"k":' .. token_text .. ',"st":"running"}' end
  advance(fields, true)
  if not task and (checkpoint[1] or checkpoint[4]) then redis.call('HSET', checkpoint_key, 'f', token_text) end
  return with_checkpoint({ 'claimed', token, scheduled_at, now, trigger, flags, retry_text(retry_attempt, retry_first, task) }, checkpoint)
end

local results = {}
local n = (#ARGV - 3) / FIELDS
for i = 1, n do
  local a = 3 + (i - 1) * FIELDS
  local k = 3 + (i - 1) * 4
  results[i] = claim(KEYS[k], KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3],
    tonumber(ARGV[a + 4]), ARGV[a + 5], ARGV[a + 6], ARGV[a + 7], ARGV[a + 8], ARGV[a + 9], ARGV[a + 10], ARGV[a + 11], ARGV[a + 12], ARGV[a + 13])
end
return { now, results }
