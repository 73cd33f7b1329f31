-- Extends the leases of running jobs, all of one replica's in one call.
-- KEYS: leases zset (every lease's expiry: see common.lua), then one runs hash per lease.
-- ARGV: lockTtl (ms), then per lease its fencing token and its job's name.
-- Returns per lease 1 if extended, 0 if it was lost (expired, cancelled, stopped, or recovered as
-- a new attempt by another replica), or { 'corrupt', key, what } if its runs hash or lease entry
-- holds what no script wrote (nothing is written for it; the other leases are extended).
-- A lease found expired is lost even while its entry is kept for recovery: its replica stopped
-- renewing it in time (it gives a lease up at 90 % of its validity), so another run may hold the
-- job already, or its next attempt may be on its way.
local leases_key = KEYS[1]
local now = now_ms()
local ttl = tonumber(ARGV[1])
local results = {}
for i = 1, #KEYS - 1 do
  local runs_key, token, name = KEYS[i + 1], ARGV[2 * i], ARGV[2 * i + 1]
  local raw, problem = read_key('hash', 'HGET', runs_key, token)
  if problem then
    results[i] = corrupt(runs_key, problem)
  elseif raw then
    local lease = decode_lease(raw)
    if not lease then
      results[i] = corrupt(runs_key, 'its entry ' .. quoted(token) .. ' is not a run lease: ' .. quoted(raw))
    elseif lease.e <= now then
      results[i] = 0
    else
      lease.e = now + ttl
      redis.call('HSET', runs_key, token, cjson.encode(lease))
      keep_runs_until_leases_expire(runs_key, ttl)
      redis.call('ZADD', leases_key, lease.e, lease_member(name, token))
      results[i] = 1
    end
  else
    results[i] = 0
  end
end
return results
