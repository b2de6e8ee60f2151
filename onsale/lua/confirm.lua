-- confirm: turns a live hold into sold tickets and appends the order to the event's stream,
-- atomically. With retake = '1', an order whose hold expired takes the same tickets again
-- if they are available (a payment that arrived late).
-- ARGV: now_ms (0 = Redis clock), hold_id, order_id, payload (the stream entry's data),
--       retake ('0' | '1'), n, then n pairs tier_id, quantity (the order's items, for retake).
-- Returns {'ok', stream_id, 'hold' | 'retaken'} | {'dup', order_id}
--      or {'err', reason} with reason hold_expired, hold_used, sold_out, insufficient_inventory,
--         unknown_tier, invalid_quantity.
local now = clock(ARGV[1])
local hold_id, order_id, payload, retake, n = ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6])
local confirmed = 'confirmed:' .. order_id

local function append()
  redis.call('HSET', DONE, hold_id, confirmed)
  return redis.call('XADD', STREAM, '*', 'order', order_id, 'data', payload)
end

local record = redis.call('HGET', DATA, hold_id)
if record then
  local expires, _, items = parse(record)
  if expires > now then
    for _, it in ipairs(items) do
      redis.call('HINCRBY', INV, it[1] .. ':held', -it[2])
      redis.call('HINCRBY', INV, it[1] .. ':sold', it[2])
    end
    redis.call('ZREM', EXP, hold_id)
    redis.call('HDEL', DATA, hold_id)
    return {'ok', append(), 'hold'}
  end
  finish(hold_id, record, 'expired')
end

local state = redis.call('HGET', DONE, hold_id)
if state == confirmed then return {'dup', order_id} end
if state and string.sub(state, 1, 10) == 'confirmed:' then return {'err', 'hold_used'} end
if retake ~= '1' then return {'err', 'hold_expired'} end

-- Whole tickets only: a quantity below 1 would lower sold and let the pool oversell.
if n < 1 then return {'err', 'invalid_quantity'} end
for i = 0, n - 1 do
  local qty = tonumber(ARGV[8 + 2 * i])
  if not qty or qty < 1 or qty ~= math.floor(qty) then return {'err', 'invalid_quantity'} end
end
expire(now, 1000000)
local short = shortage(7, n)
if short then return {'err', short[2]} end
for i = 0, n - 1 do
  redis.call('HINCRBY', INV, ARGV[7 + 2 * i] .. ':sold', tonumber(ARGV[8 + 2 * i]))
end
return {'ok', append(), 'retaken'}
