-- Stops a run wherever it runs: revokes its lease and tells its replica to abort it.
-- KEYS: runs hash. ARGV: name, fencing token, channel.
-- Returns 1, or 0 if no live lease has that token (the run ended, or its replica died).
local runs_key, name, token, channel = KEYS[1], ARGV[1], ARGV[2], ARGV[3]
if redis.call('HDEL', runs_key, token) == 0 then return 0 end
redis.call('PUBLISH', channel, cjson.encode({ t = 'cancel', name = name, token = tonumber(token), r = 'stopped' }))
return 1
