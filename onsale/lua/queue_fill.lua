-- queue_fill: many new visitors take a place at once, each as queue_join takes a new place
-- for an uncounted client with no code (the same functions, in the same order): how
-- `onsale bench queue` fills a room with a million visitors in seconds, not minutes of
-- HTTP joins. Visitors holding a place already keep it.
-- ARGV: now_ms (0 = Redis clock), visitor ids...
-- Returns {epoch, place, place, ...}: each visitor's place for their token (status()).
local now = clock(ARGV[1])
local cfg = config()
if not cfg then return {} end
local st = load_state()
local available, unsold = advance(now, cfg, st, false)
local out = {0}
for i = 2, #ARGV do
  local vid = ARGV[i]
  if not live(st, vid) and (cfg.closes == 0 or now < cfg.closes) then
    new_place(st, vid)
  end
  local place = status(now, cfg, st, vid, available, unsold)
  out[#out + 1] = place[9] or ''
  out[1] = math.max(out[1], place[10] or 0)
end
return out
