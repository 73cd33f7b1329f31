-- Extends the leases of running jobs, all of one replica's in one call.
-- KEYS: one runs hash per lease.  ARGV: lockTtl (ms), then one fencing token per lease.
-- Returns per lease 1 if extended, 0 if it was lost (expired and dropped, or cancelled), or
-- { 'corrupt', key, what } if its runs hash or lease entry holds what no script wrote (nothing is
-- written for it; the other leases are extended).
local now = now_ms()
local ttl = tonumber(ARGV[1])
local results = {}
for i = 1, #KEYS do
  local raw, problem = read_key('hash', 'HGET', KEYS[i], ARGV[i + 1])
  if problem then
    results[i] = corrupt(KEYS[i], problem)
  elseif raw then
    local lease = decode_lease(raw)
    if lease then
      lease.e = now + ttl
      redis.call('HSET', KEYS[i], ARGV[i + 1], cjson.encode(lease))
      keep_runs_until_leases_expire(KEYS[i], ttl)
      results[i] = 1
    else
      results[i] = corrupt(KEYS[i], 'its entry ' .. quoted(ARGV[i + 1]) .. ' is not a run lease: ' .. quoted(raw))
    end
  else
    results[i] = 0
  end
end
return results
