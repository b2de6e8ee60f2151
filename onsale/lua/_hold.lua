-- Prepended to hold.lua and holds.lua (after _common.lua): one hold, as hold.lua documents
-- it. items: {tier, qty} pairs (distinct tiers); code: a promo code ('' = none).
local function hold_one(now, hold_id, owner, owner_limit, admitted, items, code)
  local hold_ms = tonumber(redis.call('HGET', INV, 'hold_ms'))
  if not hold_ms then return {'err', 'unknown_event', '', 0} end
  if admitted == '1' and tonumber(redis.call('ZSCORE', ACTIVE, owner) or '0') <= now then
    return {'err', 'admission_ended', '', 0}
  end
  if redis.call('HEXISTS', DATA, hold_id) == 1 or redis.call('HEXISTS', DONE, hold_id) == 1 then
    return {'err', 'duplicate_hold', '', 0}
  end

  local amount, parts = 0, {}
  for _, it in ipairs(items) do
    local tier, qty = it[1], it[2]
    if not qty or qty < 1 or qty ~= math.floor(qty) then return {'err', 'invalid_quantity', tier, 0} end
    local f = redis.call('HMGET', INV, tier .. ':limit', tier .. ':price')
    local limit = tonumber(f[1])
    if not limit then return {'err', 'unknown_tier', tier, 0} end
    if limit > 0 and qty > limit then return {'err', 'limit_exceeded', tier, limit} end
    it[3], it[4] = limit, tonumber(f[2])
    amount = amount + qty * it[4]
    parts[#parts + 1] = tier .. ' ' .. qty
  end
  local over = over_limit(owner, owner_limit, items)
  -- The owner's own holds that fell due no longer count: expire them before saying no.
  if over and expire(now, 1000000) > 0 then over = over_limit(owner, owner_limit, items) end
  if over then return over end

  -- Lazy expiry: a few due holds every call; all of them before answering "no".
  expire(now, 16)
  local short = shortage_of(items)
  if short and expire(now, 1000000) > 0 then short = shortage_of(items) end
  if short then return short end

  local discount = 0
  if code ~= '' then
    local why, kind, value, from, upto, tiers = promo_room(code)
    -- A use comes back when a hold with the code falls due: expire them before saying no.
    if why == 'used_up' and expire(now, 1000000) > 0 then
      why, kind, value, from, upto, tiers = promo_room(code)
    end
    if not why and from > 0 and now < from then why = 'not_started' end
    if not why and upto > 0 and now >= upto then why = 'ended' end
    if not why then
      local eligible, matched = 0, false
      for _, it in ipairs(items) do
        if tiers == '' or string.find(' ' .. tiers .. ' ', ' ' .. it[1] .. ' ', 1, true) then
          matched, eligible = true, eligible + it[2] * it[4]
        end
      end
      if not matched then why = 'not_applicable' end
      if kind == 'p' then discount = math.floor(eligible * value / 100)
      else discount = math.min(value, eligible) end
    end
    if why then return {'err', 'promo_invalid', why, 0} end
    redis.call('HINCRBY', PROMO, code .. ':used', 1)
    redis.call('HSET', HOLD_PROMO, hold_id, code .. '|' .. discount)
  end

  for _, it in ipairs(items) do
    redis.call('HINCRBY', INV, it[1] .. ':held', it[2])
  end
  local expires = now + hold_ms
  redis.call('ZADD', EXP, expires, hold_id)
  redis.call('HSET', DATA, hold_id, expires .. '|' .. owner .. '|' .. table.concat(parts, ' '))
  add_owner(owner, items, 1)
  return {'ok', hold_id, expires, amount - discount, discount}
end
