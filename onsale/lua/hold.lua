-- hold: takes tickets of several tiers at once, all or nothing, until the hold expires.
-- ARGV: now_ms (0 = Redis clock), hold_id, owner ('' = none), owner_limit (0 = none),
--       admitted ('1': the owner must hold a live admission of the waiting room), n,
--       then n pairs tier_id, quantity (distinct tiers, quantity >= 1),
--       then promo_code (upper case; '' or absent = none).
-- An owner's tickets (held and bought, over all its holds) never pass a tier's per-order
-- limit in that tier, nor owner_limit in all.
-- A promo code takes one of its uses with the tickets, both or neither; its discount (on the
-- tiers it applies to) is fixed on the hold (HOLD_PROMO) and the use goes back when the hold
-- is released or expires (finish in _common.lua).
-- Returns {'ok', hold_id, expires_ms, amount, discount} (amount: sum of price * quantity,
--         less the discount)
--      or {'err', reason, tier_id, available} with reason one of unknown_event, unknown_tier,
--         duplicate_hold, invalid_quantity, limit_exceeded, sold_out, insufficient_inventory,
--         admission_ended,
--      or {'err', 'promo_invalid', why, 0}, why: unknown | used_up | not_started | ended |
--         not_applicable.
local n = tonumber(ARGV[6])
return hold_one(clock(ARGV[1]), ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5], argv_items(7, n),
  ARGV[7 + 2 * n] or '')
