-- commit_dead: moves an entry the committer cannot write to the dead-letter stream and
-- acknowledges it, atomically, so that it stops blocking nothing and is never lost.
-- KEYS: 1 orders stream, 2 commit state hash, 3 dead-letter stream.
-- ARGV: group, entry id, reason, now_ms, then the entry's field/value pairs.
-- Returns 1 if moved, 0 if another committer had already acknowledged the entry.
local STREAM, STATE, DEAD = KEYS[1], KEYS[2], KEYS[3]
local group, id, reason, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4]

if redis.call('XACK', STREAM, group, id) == 0 then return 0 end
redis.call('XADD', DEAD, '*', 'source_id', id, 'reason', reason, 'failed_ms', now,
           unpack(ARGV, 5))
redis.call('HINCRBY', STATE, 'dead', 1)
return 1
