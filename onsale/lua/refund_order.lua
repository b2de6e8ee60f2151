-- refund_order: records the refund of a sold order (onsale/checkout/refunds.py) once Stripe
-- has made it and Postgres has it: the order (status refunding) becomes the payload (status
-- refunded) and the event's refund counter moves; with return_to_sale = '1' its tickets go
-- back on sale in the same step (each tier's sold falls by the order's quantity, never below
-- 0, so available rises and never above capacity). A cancelled event's tickets never go
-- back (cancel.lua made capacity equal sold). The owners' counts are left as they are.
-- ARGV: order_id, payload (the refunded order), return_to_sale ('0' | '1'), n,
--       then n pairs tier_id, quantity.
-- Returns {'ok', tickets returned to sale}, or {'err', status} when the order is not being
-- refunded ('' when there is no such order).
local order_id, payload, back, n = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local status = order_status(order_id)
if status ~= 'refunding' then return {'err', status or ''} end
redis.call('HSET', ORDERS, order_id, payload)
redis.call('HINCRBY', COUNTS, 'refunded', 1)
local returned = 0
if back == '1' and redis.call('HEXISTS', INV, 'cancelled') == 0 then
  for _, it in ipairs(argv_items(5, n)) do
    local field = it[1] .. ':sold'
    local sold = tonumber(redis.call('HGET', INV, field) or '-1')
    if sold > 0 then
      local take = math.min(sold, it[2])
      redis.call('HSET', INV, field, sold - take)
      returned = returned + take
    end
  end
end
return {'ok', returned}
