-- Prepended to every inventory script (see PRELUDES in onsale/scripts.py).
-- KEYS: 1 inventory hash, 2 hold expiry zset, 3 live hold data hash,
--       4 finished hold states hash, 5 orders stream, 6 owners hash,
--       7 the waiting room's active admissions zset, 8 orders hash (order id -> JSON),
--       9 order counters hash, 10 promo codes hash (keys.promo), 11 live holds' promo hash.
-- A hold record is "expires_ms|owner|tier qty tier qty ...".
-- The owners hash counts what an owner (an admission) holds or bought: field <owner> in all,
-- field "<owner> <tier>" per tier. Both only ever grow by a check against the limits.
local INV, EXP, DATA, DONE, STREAM, OWNERS = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local ACTIVE, ORDERS, COUNTS = KEYS[7], KEYS[8], KEYS[9]
local PROMO, HOLD_PROMO = KEYS[10], KEYS[11]

local function parse(record)
  local exp, owner, rest = string.match(record, '^(%d+)|([^|]*)|(.*)$')
  local items = {}
  for tier, qty in string.gmatch(rest, '(%S+) (%d+)') do
    items[#items + 1] = {tier, tonumber(qty)}
  end
  return tonumber(exp), owner, items
end

-- Adds (sign 1) or gives back (sign -1) items' tickets to an owner's counts.
local function add_owner(owner, items, sign)
  if owner == '' then return end
  local total = 0
  for _, it in ipairs(items) do
    local field = owner .. ' ' .. it[1]
    if redis.call('HINCRBY', OWNERS, field, sign * it[2]) <= 0 then
      redis.call('HDEL', OWNERS, field)
    end
    total = total + it[2]
  end
  if redis.call('HINCRBY', OWNERS, owner, sign * total) <= 0 then
    redis.call('HDEL', OWNERS, owner)
  end
end

-- nil if the owner may take items on top of what it holds and bought, else
-- {'err', 'limit_exceeded', tier ('' = the overall limit), how many more are allowed}.
-- An item's third field, when the caller has read it already, is its tier's limit.
local function over_limit(owner, owner_limit, items)
  if owner == '' then return nil end
  local total = 0
  for _, it in ipairs(items) do
    local limit = it[3] or tonumber(redis.call('HGET', INV, it[1] .. ':limit') or '0')
    if limit > 0 then
      local used = tonumber(redis.call('HGET', OWNERS, owner .. ' ' .. it[1]) or '0')
      if used + it[2] > limit then return {'err', 'limit_exceeded', it[1], limit - used} end
    end
    total = total + it[2]
  end
  if owner_limit > 0 then
    local used = tonumber(redis.call('HGET', OWNERS, owner) or '0')
    if used + total > owner_limit then return {'err', 'limit_exceeded', '', owner_limit - used} end
  end
  return nil
end

-- The status of an order record (nil when there is none).
local function order_status(order_id)
  local raw = redis.call('HGET', ORDERS, order_id)
  if not raw then return nil end
  return cjson.decode(raw)['status']
end

-- The (tier, qty) pairs of ARGV from index `first`, n of them.
local function argv_items(first, n)
  local items = {}
  for i = 0, n - 1 do
    items[#items + 1] = {ARGV[first + 2 * i], tonumber(ARGV[first + 2 * i + 1])}
  end
  return items
end

-- A live hold's promo code use, if it took one, goes back to the code.
local function give_promo(hold_id)
  local taken = redis.call('HGET', HOLD_PROMO, hold_id)
  if not taken then return end
  redis.call('HINCRBY', PROMO, string.match(taken, '^([^|]*)') .. ':used', -1)
  redis.call('HDEL', HOLD_PROMO, hold_id)
end

-- Whether a promo code has a use left: nil if so, else why not ('unknown' | 'used_up').
-- Returns the code's fields too: kind ('p' percent | 'a' amount), value, from_ms,
-- until_ms and its tiers (' '-separated; '' = all).
local function promo_room(code)
  local f = redis.call('HMGET', PROMO, code, code .. ':used')
  if not f[1] then return 'unknown' end
  local kind, value, most, from, upto, tiers =
    string.match(f[1], '^(%a)|(%d+)|(%d+)|(%d+)|(%d+)|(.*)$')
  most = tonumber(most)
  if most > 0 and tonumber(f[2] or '0') >= most then return 'used_up' end
  return nil, kind, tonumber(value), tonumber(from), tonumber(upto), tiers
end

-- Ends a live hold: its tickets (and its promo code use) go back to the pool and its end
-- state is recorded once.
local function finish(hold_id, record, state)
  give_promo(hold_id)
  local _, owner, items = parse(record)
  for _, it in ipairs(items) do
    redis.call('HINCRBY', INV, it[1] .. ':held', -it[2])
  end
  add_owner(owner, items, -1)
  redis.call('ZREM', EXP, hold_id)
  redis.call('HDEL', DATA, hold_id)
  redis.call('HSET', DONE, hold_id, state)
end

-- Expires up to `limit` holds whose time has come (expires_ms <= now); returns how many.
local function expire(now, limit)
  local due = redis.call('ZRANGEBYSCORE', EXP, '-inf', now, 'LIMIT', 0, limit)
  for _, hold_id in ipairs(due) do
    local record = redis.call('HGET', DATA, hold_id)
    if record then finish(hold_id, record, 'expired') else redis.call('ZREM', EXP, hold_id) end
  end
  return #due
end

-- Checks that every item ({tier, qty}) fits; returns nil or an error.
local function shortage_of(items)
  for _, it in ipairs(items) do
    local tier, qty = it[1], it[2]
    local f = redis.call('HMGET', INV, tier .. ':cap', tier .. ':held', tier .. ':sold')
    if not f[1] then return {'err', 'unknown_tier', tier, 0} end
    local available = tonumber(f[1]) - tonumber(f[2]) - tonumber(f[3])
    if available <= 0 then return {'err', 'sold_out', tier, 0} end
    if available < qty then return {'err', 'insufficient_inventory', tier, available} end
  end
  return nil
end

-- Checks that every (tier, qty) pair of ARGV from index `first` fits; returns nil or an error.
local function shortage(first, n)
  return shortage_of(argv_items(first, n))
end
