-- queue_board: the event's public state, the same for every waiting visitor, which each
-- gateway process reads a few times a second and answers polls from (onsale/queue/board.py);
-- like a poll did, it moves the cursor (at most every ADVANCE_EVERY_MS).
-- ARGV: now_ms (0 = Redis clock).
-- Returns {} for an unknown event, else {now, opens, closes, presale, paused, frozen,
-- pfrozen, pbase, ppre, seq, cursor, rate (admissions/s, a string), admitted, skipped,
-- available, unsold, epoch}.
local now = clock(ARGV[1])
local cfg = config()
if not cfg then return {} end
local st = load_state()
local available, unsold = advance(now, cfg, st, false)
if not available then available, unsold = stock() end
return {now, cfg.opens, cfg.closes, cfg.presale, cfg.paused and 1 or 0, st.frozen and 1 or 0,
  st.pfrozen and 1 or 0, st.pbase, st.ppre, st.seq, st.cursor,
  string.format('%.17g', st.rate or measured_rate(now, cfg)), st.admitted, st.skipped, available, unsold,
  epoch()}
