-- event_activity: what could still change an event, read at once on its slot, so that it
-- can be retired from the armed set (nothing) or must come back to it (something).
-- KEYS: 1 on-sale schedule hash, 2 hold expiry zset, 3 active admissions zset,
--       4 orders stream.
-- ARGV: the committers' consumer group.
-- Returns {now_ms, closes_ms, starts_ms, live holds, live admissions,
--          uncommitted (1: stream entries not acknowledged by a committer yet, else 0)}.
local CFG, EXP, ACTIVE, STREAM = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local group = ARGV[1]

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cfg = redis.call('HMGET', CFG, 'closes_ms', 'starts_ms')
local holds = redis.call('ZCARD', EXP)
-- Admissions past their expiry end at the next decision: they cannot hold any more.
local admissions = redis.call('ZCOUNT', ACTIVE, '(' .. now, '+inf')

local uncommitted = 0
if redis.call('XLEN', STREAM) > 0 then
  local info
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', STREAM)) do
    local fields = {}
    for i = 1, #g, 2 do fields[g[i]] = g[i + 1] end
    if fields['name'] == group then info = fields end
  end
  if not info or info['pending'] > 0 then
    uncommitted = 1  -- never read by a committer, or delivered and not acknowledged
  elseif #redis.call('XRANGE', STREAM, '(' .. info['last-delivered-id'], '+', 'COUNT', 1) > 0 then
    uncommitted = 1  -- entries after the last one delivered
  end
end
return {now, tonumber(cfg[1] or '0') or 0, tonumber(cfg[2] or '0') or 0, holds, admissions,
  uncommitted}
