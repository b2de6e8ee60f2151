-- order_cas: moves an order from one of the expected statuses to the payload's, and
-- optionally gives its live hold back, in one step: two webhooks racing can never overwrite
-- each other's outcome (a failure notice never turns a confirmed order into a failed one).
-- ARGV: now_ms (0 = Redis clock), order_id, expected statuses (space-separated), payload
--       (the order with its new status), hold_id ('' = leave any hold alone).
-- Returns 'ok', or the order's current status ('' when there is no such order).
local now = clock(ARGV[1])
local order_id, expected, payload, hold_id = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local status = order_status(order_id)
if not status then return '' end
local allowed = false
for word in string.gmatch(expected, '%S+') do
  if word == status then allowed = true end
end
if not allowed then return status end
redis.call('HSET', ORDERS, order_id, payload)
if hold_id ~= '' then
  local record = redis.call('HGET', DATA, hold_id)
  if record then
    local expires = parse(record)
    finish(hold_id, record, expires <= now and 'expired' or 'released')
  end
end
return 'ok'
