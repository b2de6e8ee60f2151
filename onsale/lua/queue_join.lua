-- queue_join: a visitor takes a place, or, holding a live one, gets it back (one place per
-- visitor): a poll. One whose place ended (left, skipped, admission over) takes a new place
-- at the back. New places are counted per client network: at most `cap` live ones each.
-- While a presale is scheduled and the general sale has not opened, a visitor with an access
-- code (or bound to one already) takes a place in the presale's line instead (its pre-queue
-- before presale_ms, then first come first served), or moves there from the general
-- pre-queue; the code's first use binds it to the visitor, and its uses never pass max.
-- ARGV: now_ms (0 = Redis clock), visitor_id, client ('' = not counted: an exempt network),
--       cap (live places per client; 0 = no cap), strict ('1': the visitor sent their token,
--       so joining again while holding a place is a poll and refused when too fast, unless
--       it brings a code to a visitor bound to none),
--       code (sha256 hex of an access code; '' = none).
-- Returns status() (see _queue.lua), {'unknown_event'}, {'too_fast', -1, -1, retry_after_s,
-- 0, ''} having changed nothing, {'too_many', -1, -1, retry_after_s, 0, ''} when the
-- client is at its cap (no place taken), or {'code_invalid', -1, -1, 0, 0, ''} (an unknown
-- or used-up code; nothing taken).
local now = clock(ARGV[1])
local cfg = config()
if not cfg then return {'unknown_event', -1, -1, 0, 0, ''} end
return join_one(now, cfg, load_state(), ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5],
  ARGV[6] or '')
