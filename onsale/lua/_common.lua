-- Prepended to every inventory script (see onsale/inventory/scripts.py).
-- KEYS: 1 inventory hash, 2 hold expiry zset, 3 live hold data hash,
--       4 finished hold states hash, 5 orders stream, 6 owners hash,
--       7 the waiting room's active admissions zset.
-- A hold record is "expires_ms|owner|tier qty tier qty ...".
local INV, EXP, DATA, DONE, STREAM, OWNERS = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local ACTIVE = KEYS[7]

local function parse(record)
  local exp, owner, rest = string.match(record, '^(%d+)|([^|]*)|(.*)$')
  local items = {}
  for tier, qty in string.gmatch(rest, '(%S+) (%d+)') do
    items[#items + 1] = {tier, tonumber(qty)}
  end
  return tonumber(exp), owner, items
end

local function add_owner(owner, delta)
  if owner ~= '' then redis.call('HINCRBY', OWNERS, owner, delta) end
end

-- Ends a live hold: its tickets go back to the pool and its end state is recorded once.
local function finish(hold_id, record, state)
  local _, owner, items = parse(record)
  local total = 0
  for _, it in ipairs(items) do
    redis.call('HINCRBY', INV, it[1] .. ':held', -it[2])
    total = total + it[2]
  end
  add_owner(owner, -total)
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

-- Checks that every (tier, qty) pair of ARGV from index `first` fits; returns nil or an error.
local function shortage(first, n)
  for i = 0, n - 1 do
    local tier, qty = ARGV[first + 2 * i], tonumber(ARGV[first + 2 * i + 1])
    local f = redis.call('HMGET', INV, tier .. ':cap', tier .. ':held', tier .. ':sold')
    if not f[1] then return {'err', 'unknown_tier', tier, 0} end
    local available = tonumber(f[1]) - tonumber(f[2]) - tonumber(f[3])
    if available <= 0 then return {'err', 'sold_out', tier, 0} end
    if available < qty then return {'err', 'insufficient_inventory', tier, available} end
  end
  return nil
end
