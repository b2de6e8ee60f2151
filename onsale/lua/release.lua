-- release: gives a live hold's tickets back to the pool at once.
-- ARGV: now_ms (0 = Redis clock), hold_id.
-- Returns 'ok' when this call released it; otherwise how the hold had ended:
--   'expired' | 'released' | 'confirmed' | 'not_found'.
local now = clock(ARGV[1])
local hold_id = ARGV[2]
local record = redis.call('HGET', DATA, hold_id)
if record then
  local expires = parse(record)
  if expires <= now then
    finish(hold_id, record, 'expired')
    return 'expired'
  end
  finish(hold_id, record, 'released')
  return 'ok'
end
local state = redis.call('HGET', DONE, hold_id)
if not state then return 'not_found' end
return string.match(state, '^(%a+)')
