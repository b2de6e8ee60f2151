-- refund: records a refund Stripe has made: the order (status refunding) becomes the
-- payload (status refunded), its refund entry goes onto the orders stream for the committer,
-- and the event's refund counter moves, all at once.
-- ARGV: order_id, payload (the refunded order).
-- Returns {'ok', stream_id}, or {'err', status} when the order is not being refunded
-- ('' when there is no such order).
local order_id, payload = ARGV[1], ARGV[2]
local status = order_status(order_id)
if status ~= 'refunding' then return {'err', status or ''} end
redis.call('HSET', ORDERS, order_id, payload)
redis.call('HINCRBY', COUNTS, 'refunded', 1)
return {'ok', redis.call('XADD', STREAM, '*', 'order', order_id, 'data', payload)}
