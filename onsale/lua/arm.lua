-- arm: loads an event's tiers into the inventory; idempotent, never resets held or sold.
-- ARGV: hold_ms, n, then n quadruples tier_id, capacity, per_order_limit (0 = none), price.
-- Returns 'ok' or {'err', 'capacity_below_taken', tier_id, taken}.
local hold_ms, n = ARGV[1], tonumber(ARGV[2])
for i = 0, n - 1 do
  local tier, cap = ARGV[3 + 4 * i], tonumber(ARGV[4 + 4 * i])
  local f = redis.call('HMGET', INV, tier .. ':held', tier .. ':sold')
  local taken = tonumber(f[1] or '0') + tonumber(f[2] or '0')
  if cap < taken then return {'err', 'capacity_below_taken', tier, taken} end
end
local ids = {}
for i = 0, n - 1 do
  local tier = ARGV[3 + 4 * i]
  ids[#ids + 1] = tier
  redis.call('HSET', INV, tier .. ':cap', ARGV[4 + 4 * i], tier .. ':limit', ARGV[5 + 4 * i],
    tier .. ':price', ARGV[6 + 4 * i])
  redis.call('HSETNX', INV, tier .. ':held', 0)
  redis.call('HSETNX', INV, tier .. ':sold', 0)
end
redis.call('HSET', INV, 'hold_ms', hold_ms, 'tiers', table.concat(ids, ' '))
return 'ok'
