-- retire_move: moves event ids between the armed set and the retired sorted set, and bumps
-- the generation the committers watch, atomically (all three keys share one slot).
-- KEYS: 1 armed set, 2 retired zset, 3 generation counter.
-- ARGV: 'retire' | 'revive', max_retired (the oldest beyond it are forgotten), event ids.
-- Returns the number of ids moved: an id already where it is going is not counted, so
-- any number of gateways and committers may ask for the same move.
local ARMED, RETIRED, GEN = KEYS[1], KEYS[2], KEYS[3]
local retire, max_retired = ARGV[1] == 'retire', tonumber(ARGV[2])

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local moved = 0
for i = 3, #ARGV do
  local id = ARGV[i]
  if retire then
    if redis.call('SREM', ARMED, id) == 1 then
      redis.call('ZADD', RETIRED, now, id)
      moved = moved + 1
    end
  elseif redis.call('ZREM', RETIRED, id) == 1 then
    redis.call('SADD', ARMED, id)
    moved = moved + 1
  end
end
if moved > 0 then
  redis.call('INCR', GEN)
  local extra = redis.call('ZCARD', RETIRED) - max_retired
  if extra > 0 then redis.call('ZREMRANGEBYRANK', RETIRED, 0, extra - 1) end
end
return moved
