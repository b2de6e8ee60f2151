-- queue_leave: a visitor gives up their place or their admission (the slot frees at once).
-- ARGV: visitor_id.
-- Returns 1 if the visitor was in the room, else 0.
local vid = ARGV[1]
if not redis.call('HGET', VIS, vid) then return 0 end
redis.call('HSET', VIS, vid, -1)
redis.call('ZREM', ACTIVE, vid)
redis.call('HDEL', ADM, vid)
return 1
