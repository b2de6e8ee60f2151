-- Prepended to every inventory and waiting-room script (see PRELUDES in onsale/scripts.py).
-- The caller's clock in epoch ms, or Redis's own when it passes 0:
-- one clock for all gateways.
local function clock(arg)
  local now = tonumber(arg)
  if now and now > 0 then return now end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
