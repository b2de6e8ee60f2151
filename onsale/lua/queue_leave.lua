-- queue_leave: a visitor gives up their place or their admission (the slot frees at once).
-- Only a "left" mark stays, for a while (q:forget): polls answer that the visitor left.
-- ARGV: now_ms (0 = Redis clock), visitor_id.
-- Returns 1 if the visitor was in the room, else 0.
local now, vid = clock(ARGV[1]), ARGV[2]
if not redis.call('HGET', VIS, vid) then return 0 end
redis.call('HSET', VIS, vid, -1)
redis.call('ZREM', ACTIVE, vid)
redis.call('HDEL', ADM, vid)
redis.call('HDEL', SEEN, vid, vid .. ':n')
-- Before opening the pre-queue's ranks are not yet drawn: a leaver takes none.
if redis.call('HGET', ST, 'frozen') ~= '1' then redis.call('ZREM', PRE, vid) end
if redis.call('HGET', ST, 'pfrozen') ~= '1' then redis.call('ZREM', PPRE, vid) end
redis.call('ZADD', FORGET, now + FORGET_AFTER_MS, vid)
return 1
