-- pow_spend: a join spends its solved proof-of-work challenge, once (onsale/botgate).
-- KEYS: spent (the salts spent, of challenges expiring in one minute), joins (this second's
-- count of spending joins).
-- ARGV: salt, spent_expire_at_s (when the spent bucket may go), joins_ttl_s.
-- Returns 1 if this join spent it, 0 if it was spent before (a replay): nothing is written.
local spent, joins = KEYS[1], KEYS[2]
if redis.call('SADD', spent, ARGV[1]) == 0 then return 0 end
redis.call('EXPIREAT', spent, ARGV[2])
redis.call('INCR', joins)
redis.call('EXPIRE', joins, ARGV[3])
return 1
