-- queue_join: a visitor takes a place, or, holding a live one, gets it back (one place per
-- visitor): a poll. One whose place ended (left, skipped, admission over) takes a new place
-- at the back. New places are counted per client network: at most `cap` live ones each.
-- ARGV: now_ms (0 = Redis clock), visitor_id, client ('' = not counted: an exempt network),
--       cap (live places per client; 0 = no cap), strict ('1': the visitor sent their token,
--       so joining again while holding a place is a poll and refused when too fast).
-- Returns status() (see _queue.lua), {'unknown_event'}, {'too_fast', -1, -1, retry_after_s,
-- 0, ''} having changed nothing, or {'too_many', -1, -1, retry_after_s, 0, ''} when the
-- client is at its cap (no place taken).
local now, vid, client, cap = clock(ARGV[1]), ARGV[2], ARGV[3], tonumber(ARGV[4])
local cfg = config()
if not cfg then return {'unknown_event', -1, -1, 0, 0, ''} end
local st = load_state()
if ARGV[5] == '1' and live(st, vid) then
  local wait = too_fast(now, vid)
  if wait > 0 then return {'too_fast', -1, -1, wait, 0, ''} end
end
local available, unsold = advance(now, cfg, st, false)
if not live(st, vid) and (cfg.closes == 0 or now < cfg.closes) then
  if client ~= '' and cap > 0 then
    -- Counted here, in the one script that creates places: concurrent joins cannot pass it.
    local mine = client_places(st, client)
    if #mine >= cap then return {'too_many', -1, -1, 60, 0, ''} end
    mine[#mine + 1] = vid
    redis.call('HSET', PLACES, client, table.concat(mine, ' '))
  end
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
