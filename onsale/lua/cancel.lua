-- cancel: ends an event's sale at once, idempotently: every live hold released, every live
-- admission ended, the waiting room closed (closes_ms = 1: closed since ever, so every
-- buyer's state is 'closed'), and nothing left to sell (each tier's capacity becomes its sold
-- count, so a payment arriving late for a released hold is refused and refunded by the
-- late-payment path instead of taking tickets again).
-- Refuses while any ticket is sold, unless refunds = '1' (onsale/events/cancellation.py
-- refunds the paid orders next).
-- KEYS: the inventory keys (_common.lua), then (last) the onsale schedule hash.
-- ARGV: now_ms (0 = Redis clock), refunds ('1' = paid orders are being refunded; optional).
-- Returns {'ok', holds released} or {'err', 'has_paid_orders' | 'event_not_found', sold}.
local CFG = KEYS[#KEYS]
local now = clock(ARGV[1])
local tiers = redis.call('HGET', INV, 'tiers')
if not tiers then return {'err', 'event_not_found', 0} end
local sold = 0
for tier in string.gmatch(tiers, '%S+') do
  sold = sold + tonumber(redis.call('HGET', INV, tier .. ':sold') or '0')
end
if sold > 0 and ARGV[2] ~= '1' then return {'err', 'has_paid_orders', sold} end
local released = 0
for _, hold_id in ipairs(redis.call('HKEYS', DATA)) do
  finish(hold_id, redis.call('HGET', DATA, hold_id), 'released')
  released = released + 1
end
for tier in string.gmatch(tiers, '%S+') do
  redis.call('HSET', INV, tier .. ':cap', redis.call('HGET', INV, tier .. ':sold') or '0')
end
redis.call('HSETNX', INV, 'cancelled', now)
redis.call('HSET', CFG, 'closes_ms', 1, 'paused', 1)
redis.call('DEL', ACTIVE)
return {'ok', released}
