-- commit_ack: acknowledges stream entries whose orders are committed to Postgres, and
-- records the commit in the event's commit state, atomically (the lag is computed from it).
-- KEYS: 1 orders stream, 2 commit state hash.
-- ARGV: group, now_ms (the committer's clock), batch (orders in the transaction),
--       last_id (the newest entry id of the batch), then the entry ids.
-- Returns the number of entries acknowledged by this call: an entry another committer
-- acknowledged first is not counted twice.
local STREAM, STATE = KEYS[1], KEYS[2]
local group, now, batch, last_id = ARGV[1], ARGV[2], ARGV[3], ARGV[4]

local function after(a, b)
  if not b then return true end
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  if not bm then return true end
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am > bm or (am == bm and as > bs)
end

local acked = redis.call('XACK', STREAM, group, unpack(ARGV, 5))
if acked > 0 then
  redis.call('HINCRBY', STATE, 'committed', acked)
  redis.call('HSET', STATE, 'last_ms', now, 'batch', batch)
  if after(last_id, redis.call('HGET', STATE, 'last_id')) then
    redis.call('HSET', STATE, 'last_id', last_id)
  end
end
return acked
