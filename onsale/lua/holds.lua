-- holds: many holds in one call, one after the other, each exactly as hold.lua (hold_one in
-- _hold.lua): the gateway sends the holds that arrive together in one round trip
-- (Batches in onsale/scripts.py). Each stays atomic, all or nothing for its own tickets, and
-- an error in one (a bug, a key of the wrong type) is that hold's alone: {'fail', message},
-- as if it had been sent by itself; the others are answered.
-- ARGV: now_ms (0 = Redis clock), then per hold: hold_id, owner, owner_limit, admitted, n,
--       n pairs tier_id, quantity, then promo_code ('' = none).
-- Returns one hold.lua answer per hold, in order.
local now = clock(ARGV[1])
local out, i = {}, 2
while i <= #ARGV do
  local n = tonumber(ARGV[i + 4])
  local ok, reply = pcall(hold_one, now, ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]),
    ARGV[i + 3], argv_items(i + 5, n), ARGV[i + 5 + 2 * n] or '')
  out[#out + 1] = ok and reply or {'fail', tostring(reply)}
  i = i + 6 + 2 * n
end
return out
