-- Prepended to every waiting-room script (see onsale/keys.py queue_keys for each key).
-- KEYS: 1 onsale schedule hash, 2 inventory hash, 3 q:state, 4 q:pre, 5 q:vis, 6 q:byseq,
--       7 q:seen, 8 q:active, 9 q:adm, 10 q:rate, 11 q:places, 12 q:forget, 13 q:ppre,
--       14 ac (access codes), 15 ac:vis (visitor -> the code they used), 16 q:line,
--       17 q:alive.
local CFG, INV, ST, PRE, VIS, BYSEQ = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local SEEN, ACTIVE, ADM, RATE = KEYS[7], KEYS[8], KEYS[9], KEYS[10]
local PLACES, FORGET, PPRE, CODES, CODEVIS = KEYS[11], KEYS[12], KEYS[13], KEYS[14], KEYS[15]
-- A numbered place costs one q:vis entry, one q:line item and 16 bytes of q:alive: the
-- "still here" marks of numbered places are kept by number, not per visitor.
local LINE, ALIVE = KEYS[16], KEYS[17]
-- Credit for one admission: admit_per_minute accrues once per elapsed millisecond.
local UNIT = 60000
local BUCKET_MS = 10000

local function num(v) return tonumber(v) or 0 end

local function config()
  local c = redis.call('HMGET', CFG, 'opens_ms', 'closes_ms', 'admit_per_minute', 'max_active',
    'paused', 'hold_seconds', 'presale_ms')
  if not c[1] then return nil end
  local opens, presale = num(c[1]), num(c[7])
  -- presale 0: none (a presale never opens at or after the general sale).
  if presale >= opens then presale = 0 end
  return {opens = opens, closes = num(c[2]), rate = num(c[3]), max_active = num(c[4]),
    paused = c[5] == '1', hold = num(c[6]), presale = presale}
end

-- Tickets free now, and tickets not yet sold (free plus held in carts).
local function stock()
  local tiers = redis.call('HGET', INV, 'tiers')
  local available, unsold = 0, 0
  if not tiers then return 0, 0 end
  for tier in string.gmatch(tiers, '%S+') do
    local f = redis.call('HMGET', INV, tier .. ':cap', tier .. ':held', tier .. ':sold')
    local cap, held, sold = num(f[1]), num(f[2]), num(f[3])
    available = available + math.max(cap - held - sold, 0)
    unsold = unsold + math.max(cap - sold, 0)
  end
  return available, unsold
end

local function load_state()
  local s = redis.call('HMGET', ST, 'frozen', 'pre_count', 'seq', 'cursor', 'credit', 'last_ms',
    'admitted', 'skipped', 'rate', 'pfrozen', 'ppre', 'pbase')
  return {frozen = s[1] == '1', pre = num(s[2]), seq = num(s[3]), cursor = num(s[4]),
    credit = num(s[5]), last = num(s[6]), admitted = num(s[7]), skipped = num(s[8]),
    rate = tonumber(s[9]), pfrozen = s[10] == '1', ppre = num(s[11]), pbase = num(s[12])}
end

-- Whether the line (the cursor) runs: from the presale's opening, or the general sale's.
local function running(st) return st.frozen or st.pfrozen end

-- The fair start: at opening the pre-queue is frozen; its order is the zset's, scored by
-- sha1(seed .. visitor) with a seed committed to before anyone joined. A presale does the
-- same at presale_ms with its own pre-queue (q:ppre) and seed; at the general opening the
-- general pre-queue's ranks then follow the presale's places still in line (they keep their
-- place ahead: they queued earlier, for the same sale).
local function freeze(now, cfg, st)
  if not running(st) and cfg.presale > 0 and now >= cfg.presale then
    st.pfrozen, st.ppre = true, redis.call('ZCARD', PPRE)
    st.seq, st.cursor, st.credit, st.last = st.ppre, 0, 0, cfg.presale
    redis.call('HSET', ST, 'pfrozen', 1, 'ppre', st.ppre, 'seq', st.seq, 'cursor', 0,
      'credit', 0, 'last_ms', cfg.presale, 'pfrozen_ms', now)
  end
  if st.frozen or now < cfg.opens then return end
  st.frozen, st.pre = true, redis.call('ZCARD', PRE)
  if st.pfrozen then
    st.pbase = st.seq
    st.seq = st.pbase + st.pre
    redis.call('HSET', ST, 'frozen', 1, 'pre_count', st.pre, 'pbase', st.pbase, 'seq', st.seq,
      'frozen_ms', now)
    return
  end
  st.seq, st.cursor, st.credit, st.last = st.pre, 0, 0, cfg.opens
  redis.call('HSET', ST, 'frozen', 1, 'pre_count', st.pre, 'seq', st.seq, 'cursor', 0,
    'credit', 0, 'last_ms', cfg.opens, 'frozen_ms', now)
end

-- The visitor holding sequence number s and the q:vis entry a live holder has: the
-- presale's pre-queue ranks come first, then its later joiners, then the general
-- pre-queue's ranks (from pbase), all in shuffled order, then everyone else.
-- The cursor calls it once per number, in order: a numbered place's visitor is popped
-- from the line (a room of an earlier version may still hold it in q:byseq).
local function visitor_at(st, s)
  if s <= st.ppre then return redis.call('ZRANGE', PPRE, s - 1, s - 1)[1], 'p' end
  if st.frozen and s > st.pbase and s <= st.pbase + st.pre then
    return redis.call('ZRANGE', PRE, s - st.pbase - 1, s - st.pbase - 1)[1], '0'
  end
  local old = redis.call('HGET', BYSEQ, s)
  if old then
    redis.call('HDEL', BYSEQ, s)
    return old, tostring(s)
  end
  return redis.call('LPOP', LINE), tostring(s)
end

-- Until when the visitor holding number s counts as here (ms): their marks by number, or
-- those by name (a pre-queue's rank's before it was drawn; a room of an earlier version's).
local function alive_at(s, vid)
  local t = redis.call('BITFIELD_RO', ALIVE, 'GET', 'i64', '#' .. (2 * s))[1]
  return math.max(t, num(redis.call('HGET', SEEN, vid)))
end

-- The sequence number of a visitor's place (rec: their q:vis entry); 0 once a pre-queue's
-- ranks are all behind the cursor (its zset is then gone).
local function seq_of(st, vid, rec)
  if rec == 'p' then
    local rank = redis.call('ZRANK', PPRE, vid)
    return rank and rank + 1 or 0
  end
  local seq = tonumber(rec)
  if seq ~= 0 then return seq end
  local rank = redis.call('ZRANK', PRE, vid)
  return rank and st.pbase + rank + 1 or 0
end

-- Whether a q:vis entry is a place in a pre-queue not yet frozen (its rank is not drawn).
local function unranked(st, rec)
  return (rec == '0' and not st.frozen) or (rec == 'p' and not st.pfrozen)
end

-- Whether the visitor holds a place that has not ended: in a pre-queue, ahead of the
-- cursor, or admitted. Left, skipped (abandoned) and finished admissions have ended.
local function live(st, vid)
  local rec = redis.call('HGET', VIS, vid)
  if not rec or rec == '-1' then return false end
  if redis.call('ZSCORE', ACTIVE, vid) then return true end
  return unranked(st, rec) or seq_of(st, vid, rec) > st.cursor
end

-- 'presale' when a place (rec) is in the presale's line, else ''.
local function line_of(st, vid, rec)
  if rec == 'p' then return 'presale' end
  local seq = tonumber(rec) or 0
  if seq > 0 and (not st.frozen or seq <= st.pbase) then return 'presale' end
  return ''
end

-- Drops a visitor's per-visitor state (their place has ended, or they are long gone).
local function forget(vid)
  redis.call('HDEL', VIS, vid)
  redis.call('HDEL', SEEN, vid, vid .. ':n')
  redis.call('HDEL', ADM, vid)
end

-- Admissions whose time is up end; one never claimed by its visitor counts as a no-show.
local function expire_active(now)
  local due = redis.call('ZRANGEBYSCORE', ACTIVE, '-inf', now)
  for _, vid in ipairs(due) do
    redis.call('ZREM', ACTIVE, vid)
    local rec = redis.call('HGET', ADM, vid)
    if rec and string.sub(rec, -1) == '0' then redis.call('HINCRBY', ST, 'noshow', 1) end
  end
end

-- Admissions per second over the last minute; the configured rate until there is a measure.
local function measured_rate(now, cfg)
  local bucket = math.floor(now / BUCKET_MS)
  local n = 0
  local counts = redis.call('HMGET', RATE, bucket - 6, bucket - 5, bucket - 4, bucket - 3,
    bucket - 2, bucket - 1, bucket)
  for i = 1, 7 do n = n + num(counts[i]) end
  local start = cfg.opens
  if cfg.presale > 0 then start = cfg.presale end
  local span = math.min(now - start, 6 * BUCKET_MS + now % BUCKET_MS) / 1000
  if n == 0 or span < 5 then return cfg.rate / 60 end
  return n / span
end

-- A poll moves the cursor at most this often (the tick and the stats force it): at
-- thousands of polls a second, once per poll would be wasted work.
local ADVANCE_EVERY_MS = 20

-- Moves the admission cursor as far as the rate, max_active and the stock allow at `now`.
-- Returns the stock (available, unsold) when it read it.
local function advance(now, cfg, st, force)
  freeze(now, cfg, st)
  if not running(st) then return nil, nil end
  if not force and now - st.last < ADVANCE_EVERY_MS then return nil, nil end
  expire_active(now)
  -- (A clock behind the last decision accrues nothing: credit never goes backwards.)
  if now > st.last and not cfg.paused and (cfg.closes == 0 or now < cfg.closes) then
    st.credit = st.credit + (now - st.last) * cfg.rate
  end
  st.last = math.max(st.last, now)
  local available, unsold = stock()
  local active = redis.call('ZCARD', ACTIVE)
  local admitted, skipped, stalled = 0, 0, false
  local admit_ms = (cfg.hold + 120) * 1000
  while st.credit >= UNIT do
    if st.cursor >= st.seq or available <= 0 or active >= unsold
        or (cfg.max_active > 0 and active >= cfg.max_active) then
      stalled = true
      break
    end
    if admitted + skipped >= 5000 then break end  -- bound one script's work; the next call goes on
    local s = st.cursor + 1
    st.cursor = s
    local vid, expect = visitor_at(st, s)
    local here = vid and redis.call('HGET', VIS, vid) == expect
    if here and alive_at(s, vid) >= now then
      local expires = now + admit_ms
      redis.call('ZADD', ACTIVE, expires, vid)
      redis.call('HSET', ADM, vid, now .. '|' .. expires .. '|0')
      redis.call('ZADD', FORGET, expires, vid)  -- the visitor's state goes with the admission
      st.credit = st.credit - UNIT
      active, admitted = active + 1, admitted + 1
    else
      -- Gone, left, or stopped polling: their place is not kept, nor their state.
      if here then forget(vid) end
      skipped = skipped + 1
    end
    -- every fair-start rank is behind
    if s == st.ppre then redis.call('UNLINK', PPRE) end
    if st.frozen and st.pre > 0 and s == st.pbase + st.pre then redis.call('UNLINK', PRE) end
  end
  -- Every number passed: the marks kept by number are of no more use.
  if admitted + skipped > 0 and st.cursor >= st.seq then redis.call('UNLINK', ALIVE) end
  -- Credit builds up only while it can be spent: a stall is not followed by a burst.
  if stalled and st.credit > UNIT then st.credit = UNIT end
  -- The measured rate is kept with the state: every poll's ETA needs it.
  st.rate = measured_rate(now, cfg)
  redis.call('HSET', ST, 'cursor', st.cursor, 'credit', st.credit, 'last_ms', st.last,
    'rate', st.rate)
  if admitted > 0 then
    st.admitted = redis.call('HINCRBY', ST, 'admitted', admitted)
    local bucket = math.floor(now / BUCKET_MS)
    if redis.call('HINCRBY', RATE, bucket, admitted) == admitted then
      redis.call('HDEL', RATE, bucket - 7, bucket - 8, bucket - 9)
    end
  end
  if skipped > 0 then st.skipped = redis.call('HINCRBY', ST, 'skipped', skipped) end
  return available, unsold
end

-- Seconds until `position` is admitted: skipped places cost no time, admissions do.
local function eta(now, cfg, st, position, available)
  if cfg.paused or available <= 0 then return -1 end
  local admitted, skipped = st.admitted, st.skipped
  local keep = 1
  if admitted + skipped >= 20 then keep = admitted / (admitted + skipped) end
  return math.ceil(position * keep / (st.rate or measured_rate(now, cfg)))
end

local function poll_after(wait)
  if wait < 0 then return 10 end
  return math.max(2, math.min(30, math.floor(wait / 5)))
end

-- A visitor that misses about three polls has abandoned; the cursor will skip them.
-- Polling again before half the advised interval is too fast. The marks of a numbered place
-- (seq > 0) are kept in q:alive by number, a pre-queue place's in q:seen (fields <visitor>
-- and <visitor>:n). Returns the alive-until (ms).
local function seen(vid, seq, now, every)
  local alive, earliest = now + (3 * every + 15) * 1000, now + every * 500
  if seq > 0 then
    redis.call('BITFIELD', ALIVE, 'SET', 'i64', '#' .. (2 * seq), alive,
      'SET', 'i64', '#' .. (2 * seq + 1), earliest)
  else
    redis.call('HSET', SEEN, vid, alive, vid .. ':n', earliest)
  end
  return alive
end

-- Seconds until the visitor (their q:vis entry: rec) may poll again; 0 if now.
local function too_fast(now, st, vid, rec)
  if not rec then return 0 end
  local earliest = num(redis.call('HGET', SEEN, vid .. ':n'))
  local seq = (not unranked(st, rec)) and seq_of(st, vid, rec) or 0
  if seq > 0 then
    earliest = math.max(earliest,
      redis.call('BITFIELD_RO', ALIVE, 'GET', 'i64', '#' .. (2 * seq + 1))[1])
  end
  if now < earliest then return math.ceil((earliest - now) / 1000) end
  return 0
end

-- How long state outlives its use: a "left" answer, and a pre-queue visitor past their
-- alive-until (dropping them before opening is lossless: rejoining gives the same rank, the
-- shuffle's score depends only on the visitor id).
local FORGET_AFTER_MS = 600000

local function requeue(st, vid)
  st.seq = redis.call('HINCRBY', ST, 'seq', 1)
  redis.call('HSET', VIS, vid, st.seq)
  redis.call('RPUSH', LINE, vid)
  redis.call('HDEL', ADM, vid)
  return st.seq
end

-- A new place: at the end of the line once the pre-queue froze, else in the pre-queue at
-- 52 bits of sha1(seed .. visitor): exact in a Lua number, unknowable before opening.
local function new_place(st, vid)
  if st.frozen then
    requeue(st, vid)
  else
    local seed = redis.call('HGET', ST, 'seed') or ''
    redis.call('ZADD', PRE, tonumber(string.sub(redis.sha1hex(seed .. vid), 1, 13), 16), vid)
    redis.call('HSET', VIS, vid, 0)
  end
end

-- The numbering a sequence number belongs to: the first freeze's time (ms; 0 before any).
-- A room rebuilt after Redis lost it numbers again from 1: a token's number from before is
-- then not trusted (the gateway asks the room instead).
local function epoch()
  local e = redis.call('HMGET', ST, 'pfrozen_ms', 'frozen_ms')
  return num(e[1] or e[2])
end

-- One visitor's answer: {state, position, eta_s, poll_after_s, admission_expires_ms, note,
-- line, tiers, place, epoch}. position and eta_s are -1 when unknown; note is 'held_only'
-- while every unsold ticket is in a cart (some may come back); line is 'presale' for a
-- place in the presale's line or an admission it gave; tiers, for such an admission, the
-- tier ids its access code allows (space-separated; '' for every tier); place (for the visitor's token)
-- is a waiting visitor's sequence number, '0' or 'p' for one in the general or the
-- presale's pre-queue, else '' (with the number's epoch()).
local function status(now, cfg, st, vid, available, unsold)
  local rec = redis.call('HGET', VIS, vid)
  local expires = rec and redis.call('ZSCORE', ACTIVE, vid)
  if expires then
    local adm = redis.call('HGET', ADM, vid)
    if adm and string.sub(adm, -1) == '0' then
      redis.call('HSET', ADM, vid, string.sub(adm, 1, -2) .. '1')
      redis.call('HINCRBY', ST, 'claimed', 1)
    end
    -- Admitted before the general opening: a presale admission, limited as its code says.
    local line, tiers = '', ''
    if adm and num(string.match(adm, '^(%d+)')) < cfg.opens then
      local code = redis.call('HGET', CODEVIS, vid)
      line = 'presale'
      if code then tiers = redis.call('HGET', CODES, code .. ':tiers') or '' end
    end
    return {'admitted', -1, 0, 5, tonumber(expires), '', line, tiers}
  end
  if not available then available, unsold = stock() end
  -- A cancelled sale (closes_ms = 1, cancel.lua) is closed, though nothing is left to sell.
  if cfg.closes == 1 then return {'closed', -1, -1, 60, 0, ''} end
  if unsold <= 0 then return {'sold_out', -1, -1, 60, 0, ''} end
  if cfg.closes > 0 and now >= cfg.closes then return {'closed', -1, -1, 60, 0, ''} end
  if not rec then return {'unknown', -1, -1, 0, 0, ''} end
  if rec == '-1' then return {'left', -1, -1, 0, 0, ''} end
  local note = ''
  if available <= 0 then note = 'held_only' end
  if unranked(st, rec) then
    local at, line = cfg.opens, ''
    if rec == 'p' then at, line = cfg.presale, 'presale' end
    local wait = math.max(0, math.ceil((at - now) / 1000))
    local every = math.max(1, math.min(30, math.floor(wait / 2)))
    redis.call('ZADD', FORGET, seen(vid, 0, now, every) + FORGET_AFTER_MS, vid)
    return {'prequeue', -1, wait, every, 0, note, line, '', rec, 0}
  end
  local seq = seq_of(st, vid, rec)
  -- Passed over while away, or an admission that ended: the place has ended. Joining again
  -- takes a new one at the back (queue_join, under the client's cap on places).
  if seq <= st.cursor then return {'unknown', -1, -1, 0, 0, ''} end
  local position = seq - st.cursor
  local wait = eta(now, cfg, st, position, available)
  local every = poll_after(wait)
  seen(vid, seq, now, every)
  return {'waiting', position, wait, every, 0, note, line_of(st, vid, rec), '', tostring(seq),
    epoch()}
end

-- What one tick may clean up: visitors whose state is due to go, client lists to check.
local FORGET_BATCH = 1000
local PLACES_BATCH = 100

-- The client's visitors whose places are still live; the list loses the ended ones.
local function client_places(st, client)
  local kept, n = {}, 0
  for vid in string.gmatch(redis.call('HGET', PLACES, client) or '', '%S+') do
    n = n + 1
    if live(st, vid) then kept[#kept + 1] = vid end
  end
  if #kept == 0 then
    if n > 0 then redis.call('HDEL', PLACES, client) end
  elseif #kept < n then
    redis.call('HSET', PLACES, client, table.concat(kept, ' '))
  end
  return kept
end

-- Keeps per-visitor state bounded by the live places (the tick's work): drops the state of
-- visitors whose time in q:forget has come (pre-queue visitors gone before opening, lapsed
-- "left" answers, ended admissions; a live place is kept and the cursor decides on it), and
-- walks a batch of client lists dropping ended places.
local function tidy(now, st)
  local due = redis.call('ZRANGEBYSCORE', FORGET, '-inf', now, 'LIMIT', 0, FORGET_BATCH)
  for _, vid in ipairs(due) do
    local rec = redis.call('HGET', VIS, vid)
    if rec == '0' and not st.frozen then
      forget(vid)
      redis.call('ZREM', PRE, vid)
    elseif rec == 'p' and not st.pfrozen then
      forget(vid)
      redis.call('ZREM', PPRE, vid)
    elseif rec and not live(st, vid) then
      forget(vid)
    end
    redis.call('ZREM', FORGET, vid)
  end
  local scan = redis.call('HSCAN', PLACES, redis.call('HGET', ST, 'places_scan') or '0',
    'COUNT', PLACES_BATCH)
  for i = 1, #scan[2], 2 do client_places(st, scan[2][i]) end
  redis.call('HSET', ST, 'places_scan', scan[1])
end

-- One join (queue_join.lua; queue_joins.lua runs many in one call): see queue_join.lua for
-- the arguments and the answers. cfg and st are the event's, read once per call.
local function join_one(now, cfg, st, vid, client, cap, strict, code)
  -- A code matters only while the presale can still admit: after the opening (or once the
  -- sale is closed or cancelled) it is not needed.
  local presale = cfg.presale > 0 and now < cfg.opens and (cfg.closes == 0 or now < cfg.closes)
  local bound = presale and redis.call('HGET', CODEVIS, vid)
  -- A first code, typed just after a poll, is not a poll: it is answered at once.
  if strict == '1' and live(st, vid) and not (presale and code ~= '' and not bound) then
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
    else
      new_place(st, vid)
    end
  end
  return status(now, cfg, st, vid, available, unsold)
end
