-- Keeps a replica in the set of live replicas (or takes it out), with what it is (labels, worker
-- flag, session TTL, runs), expires the members whose session lapsed, and reads the membership
-- together with the change version, so one call every few seconds is a replica's whole idle cost.
-- KEYS: replicas zset, version, epoch, sessions zset, members hash, member-runs hash, departed zset.
-- ARGV: instanceId, session ttl (ms), 'beat' | 'leave', channel, member info JSON ({l, w, n}),
--       runs JSON, how long departures are kept (ms), ttl of members without a session (ms).
-- Returns { version, live instance ids, epoch, now, { id, last beat, info JSON or '' }... flat,
--           { departure JSON ({i, r}), departed at }... flat }. Joins and leaves are announced as 'members'.
-- The replicas zset keeps its meaning (id -> last heartbeat) for the other scripts; the sessions
-- zset holds each member's own expiry (last heartbeat + its session TTL), so members with
-- different TTLs expire each on its own. A member whose session lapsed is recorded as departed
-- ('expired'), one that leaves as 'shutdown': every replica reads why at its next heartbeat.
-- The epoch is made once per life of the keys (Redis's time when a heartbeat found it missing):
-- a replica that sees it change knows Redis lost its state, even if the version counter, counted
-- again from zero, happens to read as the one it knew. `now` (Redis's clock) keeps each replica's
-- estimate of it.
local replicas_key, version_key, epoch_key = KEYS[1], KEYS[2], KEYS[3]
local sessions_key, members_key, runs_key, departed_key = KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local instance, ttl, action, channel = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local info, runs, kept, legacy_ttl = ARGV[5], ARGV[6], tonumber(ARGV[7]), tonumber(ARGV[8])
local now = now_ms()
local changed = 0

local function depart(who, reason)
  local removed = redis.call('ZREM', replicas_key, who)
  redis.call('ZREM', sessions_key, who)
  redis.call('HDEL', members_key, who)
  redis.call('HDEL', runs_key, who)
  if removed > 0 then
    redis.call('ZADD', departed_key, now, cjson.encode({ i = who, r = reason }))
  end
  return removed
end

if action == 'leave' then
  changed = depart(instance, 'shutdown')
else
  changed = redis.call('ZADD', replicas_key, now, instance)
  redis.call('ZADD', sessions_key, now + ttl, instance)
  local member = cjson.decode(info)
  local before = redis.call('HGET', members_key, instance)
  local joined_at = now
  if changed == 0 and before then
    local ok, previous = pcall(cjson.decode, before)
    if ok and type(previous) == 'table' and tonumber(previous.j) then joined_at = tonumber(previous.j) end
  end
  member.j = joined_at
  member.t = ttl
  redis.call('HSET', members_key, instance, cjson.encode(member))
  redis.call('HSET', runs_key, instance, runs)
end

-- Sessions that lapsed by Redis's clock.
for _, who in ipairs(redis.call('ZRANGEBYSCORE', sessions_key, '-inf', now)) do
  changed = changed + depart(who, 'expired')
end
-- Members of an earlier version (no session entry): the fixed ttl they always had.
for _, who in ipairs(redis.call('ZRANGEBYSCORE', replicas_key, '-inf', now - legacy_ttl)) do
  if not redis.call('ZSCORE', sessions_key, who) then changed = changed + depart(who, 'expired') end
end
redis.call('ZREMRANGEBYSCORE', departed_key, '-inf', now - kept)

if changed > 0 then redis.call('PUBLISH', channel, cjson.encode({ t = 'members' })) end
local epoch = redis.call('GET', epoch_key)
if not epoch then
  epoch = tostring(now)
  redis.call('SET', epoch_key, epoch)
end

local ids, live = {}, {}
local beats = redis.call('ZRANGE', replicas_key, 0, -1, 'WITHSCORES')
for i = 1, #beats, 2 do
  local who = beats[i]
  ids[#ids + 1] = who
  live[#live + 1] = who
  live[#live + 1] = beats[i + 1]
  live[#live + 1] = redis.call('HGET', members_key, who) or ''
end
local departed = {}
for _, record in ipairs(redis.call('ZRANGE', departed_key, 0, -1, 'WITHSCORES')) do departed[#departed + 1] = record end
return { redis.call('GET', version_key) or '0', ids, epoch, now, live, departed }
