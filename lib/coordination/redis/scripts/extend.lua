-- Extends the leases of running jobs, all of one replica's in one call.
-- KEYS: one runs hash per lease.  ARGV: lockTtl (ms), then one fencing token per lease.
-- Returns per lease 1 if extended, 0 if it was lost (expired and dropped, or cancelled).
local now = now_ms()
local ttl = tonumber(ARGV[1])
local results = {}
for i = 1, #KEYS do
  local raw = redis.call('HGET', KEYS[i], ARGV[i + 1])
  if raw then
    local lease = cjson.decode(raw)
    lease.e = now + ttl
    redis.call('HSET', KEYS[i], ARGV[i + 1], cjson.encode(lease))
    keep_runs_until_leases_expire(KEYS[i], ttl)
    results[i] = 1
  else
    results[i] = 0
  end
end
return results
