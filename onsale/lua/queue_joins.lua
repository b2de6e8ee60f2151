-- queue_joins: many joins in one call, one after the other, each exactly as queue_join.lua
-- (join_one in _queue.lua): the gateway sends the joins that arrive together in one round
-- trip (onsale/queue/room.py). Each stays atomic; together they hold the shard a few ms.
-- An error in one join is that join's alone: {'fail', message}.
-- ARGV: now_ms (0 = Redis clock), then per join: visitor_id, client, cap, strict, code.
-- Returns one queue_join answer per join, in order.
local now = clock(ARGV[1])
local cfg = config()
local out = {}
local st = cfg and load_state()
for i = 2, #ARGV, 5 do
  if not cfg then
    out[#out + 1] = {'unknown_event', -1, -1, 0, 0, ''}
  else
    local ok, reply = pcall(join_one, now, cfg, st, ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]),
      ARGV[i + 3], ARGV[i + 4])
    out[#out + 1] = ok and reply or {'fail', tostring(reply)}
  end
end
return out
