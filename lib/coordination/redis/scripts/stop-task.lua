-- Stops a task wherever it is: removes its pending dispatch ("task:<id>") and its pending retries
-- ("retry:…:<id>") from its job's triggers, so that no replica starts it from now on, and
-- revokes every live lease of it (`x`), telling their replicas to abort them. One step: a claim
-- either took the task before (its lease is revoked here) or finds it gone after.
-- Idempotent by request id: a stop sent again gets its first answer.
-- KEYS: runs hash, the job's triggers zset, request key.
-- ARGV: name, task id, channel, request id, request ttl (ms).
-- Returns { pending entries removed, leases revoked }.
local runs_key, triggers_key, request_key = KEYS[1], KEYS[2], KEYS[3]
local name, task, channel, request_id, request_ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local seen = replayed(request_key, request_id)
if seen then return seen end
local now = now_ms()
local pending, wrong = read_key('zset', 'ZRANGE', triggers_key, 0, -1)
if wrong then raise_corrupt(triggers_key, wrong) end
local leases = live_leases(runs_key, now)
local removed, revoked = 0, 0
local dispatched = name .. '\nEVENT\ntask:' .. task
local retry_tail = ':' .. task
for _, member in ipairs(pending) do
  if member == dispatched or (string.find(member, '\nretry:', 1, true) and string.sub(member, -#retry_tail) == retry_tail
      and string.match(member, '\nretry:%d+:%-?%d+:%d+:(%d+)$') == task) then
    removed = removed + redis.call('ZREM', triggers_key, member)
  end
end
for _, lease in ipairs(leases) do
  if lease[2].x ~= nil and string.format('%.0f', lease[2].x) == task then
    redis.call('HDEL', runs_key, lease[1])
    redis.call('PUBLISH', channel, cjson.encode({ t = 'cancel', name = name, token = tonumber(lease[1]), r = 'stopped' }))
    revoked = revoked + 1
  end
end
return remember(request_key, request_id, request_ttl, { removed, revoked })
