-- queue_status: a visitor's place, position, ETA and admission; also moves the cursor.
-- ARGV: now_ms (0 = Redis clock), visitor_id, strict ('1': refuse polls that come too fast).
-- Returns status() (see _queue.lua), {'unknown_event'}, or, for a poll before half the
-- advised interval, {'too_fast', -1, -1, retry_after_s, 0, ''} having changed nothing.
local now, vid = clock(ARGV[1]), ARGV[2]
local cfg = config()
if not cfg then return {'unknown_event', -1, -1, 0, 0, ''} end
local st = load_state()
if ARGV[3] == '1' then
  local wait = too_fast(now, st, vid, redis.call('HGET', VIS, vid))
  if wait > 0 then return {'too_fast', -1, -1, wait, 0, ''} end
end
local available, unsold = advance(now, cfg, st, false)
return status(now, cfg, st, vid, available, unsold)
