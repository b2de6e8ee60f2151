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
local now, vid, client, cap = clock(ARGV[1]), ARGV[2], ARGV[3], tonumber(ARGV[4])
local code = ARGV[6] or ''
local cfg = config()
if not cfg then return {'unknown_event', -1, -1, 0, 0, ''} end
local st = load_state()
-- A code matters only while the presale can still admit: after the opening (or once the
-- sale is closed or cancelled) it is not needed.
local presale = cfg.presale > 0 and now < cfg.opens and (cfg.closes == 0 or now < cfg.closes)
local bound = presale and redis.call('HGET', CODEVIS, vid)
-- A first code, typed just after a poll, is not a poll: it is answered at once.
if ARGV[5] == '1' and live(st, vid) and not (presale and code ~= '' and not bound) then
  local wait = too_fast(now, st, vid, redis.call('HGET', VIS, vid))
  if wait > 0 then return {'too_fast', -1, -1, wait, 0, ''} end
end
local available, unsold = advance(now, cfg, st, false)
if presale and code ~= '' and not bound then
  local f = redis.call('HMGET', CODES, code .. ':max', code .. ':uses')
  if not f[1] or num(f[2]) >= num(f[1]) then return {'code_invalid', -1, -1, 0, 0, ''} end
end
local function presale_place()
  if not bound then
    redis.call('HINCRBY', CODES, code .. ':uses', 1)
    redis.call('HSET', CODEVIS, vid, code)
  end
  if st.pfrozen then
    requeue(st, vid)
  else
    local seed = redis.call('HGET', ST, 'pseed') or ''
    redis.call('ZADD', PPRE, tonumber(string.sub(redis.sha1hex(seed .. vid), 1, 13), 16), vid)
    redis.call('HSET', VIS, vid, 'p')
  end
end
local wants_presale = presale and (bound or code ~= '')
if live(st, vid) then
  if wants_presale and redis.call('HGET', VIS, vid) == '0' and not st.frozen then
    -- From the general pre-queue (its rank not drawn yet) to the presale's line.
    redis.call('ZREM', PRE, vid)
    presale_place()
  end
elseif cfg.closes == 0 or now < cfg.closes then
  if client ~= '' and cap > 0 then
    -- Counted here, in the one script that creates places: concurrent joins cannot pass it.
    local mine = client_places(st, client)
    if #mine >= cap then return {'too_many', -1, -1, 60, 0, ''} end
    mine[#mine + 1] = vid
    redis.call('HSET', PLACES, client, table.concat(mine, ' '))
  end
  if wants_presale then
    presale_place()
  elseif st.frozen then
    requeue(st, vid)
  else
    -- 52 bits of sha1(seed .. visitor): exact in a Lua number, unknowable before opening.
    local seed = redis.call('HGET', ST, 'seed') or ''
    redis.call('ZADD', PRE, tonumber(string.sub(redis.sha1hex(seed .. vid), 1, 13), 16), vid)
    redis.call('HSET', VIS, vid, 0)
  end
end
return status(now, cfg, st, vid, available, unsold)
