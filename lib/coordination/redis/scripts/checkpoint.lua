-- A job's checkpoint: one hash per job (RedisKeys.checkpoint), fields `s` (the state's JSON),
-- `at` (saved at, ms), `k` (the writer's fencing token) and `f` (the fence). The fence is the
-- highest of: the tokens that wrote the checkpoint, the tokens that claimed the job while it had
-- a checkpoint hash (claim.lua), and the job's fencing counter when it was cleared. A write with
-- a token below the fence, or below the job's own fencing counter (a newer run of the job was
-- issued, whether or not the job had a checkpoint then), comes from a run that was replaced (a
-- paused "zombie"): refused. So is a write for a job Redis no longer has (its state was lost:
-- the runs from before the loss must not re-create the checkpoint before it is restored).
-- KEYS: checkpoint hash, job hash.
-- ARGV: op, then for 'save': fencing token, state JSON, saved at (ms).
-- Returns:
--   save:  { 'saved' } | { 'stale', fence }
--   read:  { 'found', state, savedAt, token } | { 'none' } | { 'unknown' } (no such job)
--   clear: 1, or 0 if the job is unknown
local checkpoint_key, job_key = KEYS[1], KEYS[2]
local op = ARGV[1]

local function read_checkpoint()
  local values, problem = read_key('hash', 'HMGET', checkpoint_key, 's', 'at', 'k', 'f')
  if problem then raise_corrupt(checkpoint_key, problem) end
  return values
end

-- The fence of a checkpoint hash as read: its `f`, and never below the token that wrote it.
local function fence_of(values)
  return math.max(tonumber(values[3]) or 0, tonumber(values[4]) or 0)
end

if op == 'save' then
  local token = tonumber(ARGV[2])
  if redis.call('EXISTS', job_key) == 0 then return { 'stale', 0 } end
  local fence = math.max(fence_of(read_checkpoint()), tonumber(redis.call('HGET', job_key, 'fence')) or 0)
  if token < fence then return { 'stale', fence } end
  redis.call('HSET', checkpoint_key, 's', ARGV[3], 'at', ARGV[4], 'k', ARGV[2], 'f', ARGV[2])
  return { 'saved' }
end

if redis.call('EXISTS', job_key) == 0 then
  if op == 'read' then return { 'unknown' } end
  return 0
end
local values = read_checkpoint()

if op == 'read' then
  if not values[1] then return { 'none' } end
  return { 'found', values[1], tonumber(values[2]) or 0, tonumber(values[3]) or 0 }
end

-- clear: the fence rises to the job's latest token, so no run older than the latest one can
-- bring the checkpoint back.
local fence = math.max(fence_of(values), tonumber(redis.call('HGET', job_key, 'fence')) or 0)
redis.call('HDEL', checkpoint_key, 's', 'at', 'k')
redis.call('HSET', checkpoint_key, 'f', string.format('%d', fence))
return 1
