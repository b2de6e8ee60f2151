-- confirm: turns a live hold into sold tickets and appends the order to the event's stream,
-- atomically; the order's record (if it has one) becomes the payload in the same step, and
-- the owner's checkout slot in the waiting room is freed. With retake = '1', an order whose
-- hold expired or was released takes the same tickets again if they are available and the
-- owner's limits allow (a payment that arrived late). An order being refunded never is.
-- ARGV: now_ms (0 = Redis clock), hold_id, order_id, payload (the confirmed order),
--       retake ('0' | '1'), owner ('' = none), owner_limit (0 = none), n,
--       then n pairs tier_id, quantity (the order's items, for retake), then promo_code
--       (the order's, upper case; '' or absent = none, for retake).
-- A promo code's use: a live hold's becomes the order's (kept: it stays counted); a retake
-- takes a use of the order's code again, both or neither with the tickets, and never past
-- max_uses (the discount was fixed and paid at hold time, so without a use left the
-- payment is refused like one without tickets left: refunded).
-- Returns {'ok', stream_id, 'hold' | 'retaken'} | {'dup', order_id}
--      or {'err', reason} with reason hold_expired, hold_used, sold_out, insufficient_inventory,
--         unknown_tier, invalid_quantity, limit_exceeded, order_settled (refunding/refunded),
--         promo_invalid (retake: the code has no use left).
local now = clock(ARGV[1])
local hold_id, order_id, payload, retake = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local owner, owner_limit, n = ARGV[6], tonumber(ARGV[7]), tonumber(ARGV[8])
local confirmed = 'confirmed:' .. order_id

local status = order_status(order_id)
if status == 'confirmed' then return {'dup', order_id} end
if status == 'refunding' or status == 'refunded' then return {'err', 'order_settled'} end

local function append(buyer)
  redis.call('HSET', DONE, hold_id, confirmed)
  if status then redis.call('HSET', ORDERS, order_id, payload) end
  if buyer ~= '' then redis.call('ZREM', ACTIVE, buyer) end
  return redis.call('XADD', STREAM, '*', 'order', order_id, 'data', payload)
end

local record = redis.call('HGET', DATA, hold_id)
if record then
  local expires, holder, items = parse(record)
  if expires > now then
    for _, it in ipairs(items) do
      redis.call('HINCRBY', INV, it[1] .. ':held', -it[2])
      redis.call('HINCRBY', INV, it[1] .. ':sold', it[2])
    end
    redis.call('ZREM', EXP, hold_id)
    redis.call('HDEL', DATA, hold_id)
    redis.call('HDEL', HOLD_PROMO, hold_id)
    return {'ok', append(holder), 'hold'}
  end
  finish(hold_id, record, 'expired')
end

local state = redis.call('HGET', DONE, hold_id)
if state == confirmed then return {'dup', order_id} end
if state and string.sub(state, 1, 10) == 'confirmed:' then return {'err', 'hold_used'} end
if retake ~= '1' then return {'err', 'hold_expired'} end

-- Whole tickets only: a quantity below 1 would lower sold and let the pool oversell.
if n < 1 then return {'err', 'invalid_quantity'} end
local items = argv_items(9, n)
for _, it in ipairs(items) do
  if not it[2] or it[2] < 1 or it[2] ~= math.floor(it[2]) then
    return {'err', 'invalid_quantity'}
  end
end
expire(now, 1000000)
-- Releasing gave the owner's count back; taking again must pass the owner's limits again.
local over = over_limit(owner, owner_limit, items)
if over then return {'err', over[2]} end
local short = shortage(9, n)
if short then return {'err', short[2]} end
local code = ARGV[9 + 2 * n] or ''
if code ~= '' then
  if promo_room(code) then return {'err', 'promo_invalid'} end
  redis.call('HINCRBY', PROMO, code .. ':used', 1)
end
for _, it in ipairs(items) do
  redis.call('HINCRBY', INV, it[1] .. ':sold', it[2])
end
add_owner(owner, items, 1)
return {'ok', append(owner), 'retaken'}
