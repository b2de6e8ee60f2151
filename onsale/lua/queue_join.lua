-- queue_join: a visitor takes a place (or gets theirs back: one place per visitor; one who
-- left takes a new place at the back).
-- ARGV: now_ms (0 = Redis clock), visitor_id.
-- Returns status() (see _queue.lua), or {'unknown_event'}.
local now, vid = clock(ARGV[1]), ARGV[2]
local cfg = config()
if not cfg then return {'unknown_event', -1, -1, 0, 0, ''} end
local st = load_state()
local available, unsold = advance(now, cfg, st, false)
local rec = redis.call('HGET', VIS, vid)
if (not rec or rec == '-1') and (cfg.closes == 0 or now < cfg.closes) then
  if st.frozen then
    requeue(st, vid)
  else
    -- 52 bits of sha1(seed .. visitor): exact in a Lua number, unknowable before opening.
    local seed = redis.call('HGET', ST, 'seed') or ''
    redis.call('ZADD', PRE, tonumber(string.sub(redis.sha1hex(seed .. vid), 1, 13), 16), vid)
    redis.call('HSET', VIS, vid, 0)
  end
end
return status(now, cfg, st, vid, available, unsold)
