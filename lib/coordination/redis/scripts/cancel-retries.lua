-- Removes a run's pending retries: stop() of a task or run between two attempts, so that no next
-- attempt runs. A retry's member is "name \n trigger \n retry:<attempt>:<scheduledAt>:<first token>:<task id>"
-- (finish.lua, recover.lua); those of the task (or, for a job's run, of the first token) go.
-- Once claimed, a retry is a lease like any run: the caller stops that instead.
-- KEYS: the job's triggers zset, version.  ARGV: name, task id ('' for any), first token ('' for any), channel.
-- Returns how many were removed.
local triggers_key, version_key = KEYS[1], KEYS[2]
local name, task, first, channel = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local pending, wrong = read_key('zset', 'ZRANGE', triggers_key, 0, -1)
if wrong then raise_corrupt(triggers_key, wrong) end
local removed = 0
for _, member in ipairs(pending) do
  local o, x = string.match(member, '\nretry:%d+:%-?%d+:(%d+):(%d*)$')
  if o and (task == '' or x == task) and (first == '' or o == first) then
    removed = removed + redis.call('ZREM', triggers_key, member)
  end
end
if removed > 0 then announce_changed(version_key, channel, { name }) end
return removed
