-- sweep: returns the tickets of expired holds to the pool; each hold expires once.
-- ARGV: now_ms (0 = Redis clock), limit.
-- Returns the number of holds expired.
return expire(clock(ARGV[1]), tonumber(ARGV[2]))
