-- queue_advance: moves the admission cursor (the gateways' periodic tick), drops the state
-- of ended places (tidy), and reports.
-- ARGV: now_ms (0 = Redis clock).
-- Returns {frozen, pre_count, seq, cursor, active, admitted, skipped, noshow, claimed,
-- running (the presale's or the general line moves), unranked (in pre-queues not yet frozen)}.
local now = clock(ARGV[1])
local cfg = config()
if not cfg then return {} end
local st = load_state()
advance(now, cfg, st, true)
tidy(now, st)
local c = redis.call('HMGET', ST, 'admitted', 'skipped', 'noshow', 'claimed')
return {st.frozen and 1 or 0, st.pre, st.seq, st.cursor, redis.call('ZCARD', ACTIVE),
  num(c[1]), num(c[2]), num(c[3]), num(c[4]), running(st) and 1 or 0,
  (st.frozen and 0 or redis.call('ZCARD', PRE)) + (st.pfrozen and 0 or redis.call('ZCARD', PPRE))}
