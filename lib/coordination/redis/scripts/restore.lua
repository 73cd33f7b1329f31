-- Writes jobs back from a snapshot after Redis lost them (restarted without persistence, flushed,
-- a failover to an empty replica). Each job is written only if its hash does not exist, checked
-- and written in this one script: replicas that restore together write each job once, and a job
-- that is there (never lost, or restored by another replica first) is never overwritten.
-- KEYS: names set, due zset, version, then per job: its job hash, its checkpoint hash.
-- ARGV: channel, then per job 6 values:
--       name, the job hash's fields as a JSON array of strings (field, value, ...), due ('' for
--       none: paused or on demand), fence floor, the checkpoint hash's fields as a JSON array
--       ('' for none), exact ('1' when the snapshot is final, else '').
-- Returns per job: { 'restored' } | { 'present' } | { 'passed', now } (the due time has come by
-- Redis's clock: the caller computes a later one).
-- A snapshot that is not final is older than the loss: a due time served after it was written is
-- unknown to it. So the job's `served` is raised to Redis's now (no due time that has come is set
-- again: claim, register and reschedule refuse one at or before `served`), and only a due time
-- ahead of now is restored. A final snapshot (written at shutdown by the last live replica) says
-- all that ran: `served` and the due time are restored as they were, even a due time that has
-- come, and claim.lua's missed-run policy serves what came since. The fencing counter and the checkpoint's fence are raised to at least now and the
-- floor: a run from before the loss (its token came from a clock that has not reached now) can
-- neither outrank a run claimed after the restore nor write the checkpoint again.
local names_key, due_key, version_key = KEYS[1], KEYS[2], KEYS[3]
local channel = ARGV[1]
local now = now_ms()
local FIELDS = 6
local results, restored = {}, {}

local n = (#ARGV - 1) / FIELDS
for i = 1, n do
  local a = 1 + (i - 1) * FIELDS
  local name, fields, due, floor, checkpoint, exact = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], ARGV[a + 5], ARGV[a + 6] == '1'
  local job_key, checkpoint_key = KEYS[2 + 2 * i], KEYS[3 + 2 * i]
  if redis.call('EXISTS', job_key) == 1 then
    results[i] = { 'present' }
  elseif due ~= '' and tonumber(due) <= now and not exact then
    results[i] = { 'passed', now }
  else
    local values = cjson.decode(fields)
    local served = 0
    for j = 1, #values, 2 do
      if values[j] == 'served' then served = tonumber(values[j + 1]) or 0 end
    end
    local fence = math.max(tonumber(floor) or 0, now)
    if not exact then
      values[#values + 1] = 'served'
      values[#values + 1] = string.format('%d', math.max(served, now))
    end
    values[#values + 1] = 'fence'
    values[#values + 1] = string.format('%d', fence)
    values[#values + 1] = 'restored'
    values[#values + 1] = string.format('%d', now)
    redis.call('HSET', job_key, unpack(values))
    redis.call('SADD', names_key, name)
    if due ~= '' then redis.call('ZADD', due_key, due, name) end
    if redis.call('EXISTS', checkpoint_key) == 1 then
      -- Written since the loss (saves for a missing job are refused, but a clear or an older
      -- version may have left one): the snapshot's state is not put over it, its fence still rises.
      local f = tonumber(redis.call('HGET', checkpoint_key, 'f')) or 0
      redis.call('HSET', checkpoint_key, 'f', string.format('%d', math.max(f, fence + 1)))
    elseif checkpoint ~= '' then
      local saved = cjson.decode(checkpoint)
      local f = 0
      for j = 1, #saved, 2 do
        if saved[j] == 'f' then f = tonumber(saved[j + 1]) or 0 end
      end
      saved[#saved + 1] = 'f'
      -- Above the fence: a run from before the loss whose token is the restore's very millisecond is fenced too.
      saved[#saved + 1] = string.format('%d', math.max(f, fence + 1))
      redis.call('HSET', checkpoint_key, unpack(saved))
    end
    restored[#restored + 1] = name
    results[i] = { 'restored' }
  end
end

announce_changed(version_key, channel, restored)
return results
