-- schedule: moves an on-sale's schedule, only while its sale has not opened: the check and
-- the change in one step, so the pre-queue's freeze (_queue.lua, at opens_ms) cannot pass
-- between them. The freeze reads opens_ms at every decision, so a moved opening takes effect.
-- KEYS: 1 onsale schedule hash, 2 q:state, 3 inventory hash.
-- ARGV: now_ms (0 = Redis clock), opens_ms, closes_ms (0 = none), hold_seconds,
--       presale_ms (0 = none; once the presale has opened it no longer moves).
-- Returns 'ok' or {'err', 'sale_started' | 'event_not_found' | 'event_cancelled', opens_ms}.
local CFG, ST, INV = KEYS[1], KEYS[2], KEYS[3]
local now = clock(ARGV[1])
local c = redis.call('HMGET', CFG, 'opens_ms', 'closes_ms', 'presale_ms')
local opens = tonumber(c[1])
if not opens then return {'err', 'event_not_found', 0} end
if redis.call('HEXISTS', INV, 'cancelled') == 1 then return {'err', 'event_cancelled', opens} end
if now >= opens or redis.call('HGET', ST, 'frozen') == '1' then
  return {'err', 'sale_started', opens}
end
local presale = tonumber(c[3]) or 0
if presale ~= (tonumber(ARGV[5]) or 0) and presale > 0
    and (now >= presale or redis.call('HGET', ST, 'pfrozen') == '1') then
  return {'err', 'sale_started', opens}
end
redis.call('HSET', CFG, 'opens_ms', ARGV[2], 'closes_ms', ARGV[3], 'hold_seconds', ARGV[4],
  'presale_ms', tonumber(ARGV[5]) or 0)
redis.call('HSET', INV, 'hold_ms', tonumber(ARGV[4]) * 1000)
return 'ok'
