-- genledger's charge as a Redis script, for bench/compare_redis.sh.
-- KEYS[1]: the workspace hash (fields: limit, used); KEYS[2]: the user hash (field: used).
-- ARGV[1]: the cost (a positive integer).
-- Check-and-debit in one step: if the workspace has a limit and used + cost exceeds it, nothing
-- changes and {0, remaining} is returned; otherwise the workspace and the user are both debited
-- (HINCRBY) and {1, remaining} is returned (remaining -1: no limit).
local cost = tonumber(ARGV[1])
local ws = redis.call('HMGET', KEYS[1], 'limit', 'used')
local limit = tonumber(ws[1])
local used = tonumber(ws[2]) or 0
if limit and used + cost > limit then
  return {0, limit - used}
end
local now = redis.call('HINCRBY', KEYS[1], 'used', cost)
redis.call('HINCRBY', KEYS[2], 'used', cost)
if limit then
  return {1, limit - now}
end
return {1, -1}
