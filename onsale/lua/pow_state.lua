-- pow_state: what a gateway needs to set an event's proof-of-work (onsale/botgate).
-- KEYS: onsale (the event's schedule hash), then the join counters of the last seconds.
-- ARGV: none.
-- Returns {armed (0/1), pow_difficulty (-1: the gateways' default), joins in those seconds}.
local cfg = redis.call('HGET', KEYS[1], 'pow_difficulty')
if not cfg and redis.call('EXISTS', KEYS[1]) == 0 then return {0, 0, 0} end
local joins = 0
for i = 2, #KEYS do joins = joins + tonumber(redis.call('GET', KEYS[i]) or '0') end
return {1, tonumber(cfg or '-1'), joins}
