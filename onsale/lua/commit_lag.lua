-- commit_lag: everything the committers' lag on one event is computed from, read at once
-- so that the figures agree with each other.
-- KEYS: 1 orders stream, 2 commit state hash.
-- ARGV: group.
-- Returns {entries, now_ms, has_group (0|1), in_flight, oldest_pending_id | '',
--          first_unread_id | '', unread (-1: unknown before Redis 7), state hash as a flat list}.
local STREAM, STATE = KEYS[1], KEYS[2]
local group = ARGV[1]

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HGETALL', STATE)
local entries = redis.call('XLEN', STREAM)
if entries == 0 then return {0, now, 0, 0, '', '', 0, state} end

local info
for _, g in ipairs(redis.call('XINFO', 'GROUPS', STREAM)) do
  local fields = {}
  for i = 1, #g, 2 do fields[g[i]] = g[i + 1] end
  if fields['name'] == group then info = fields end
end
if not info then  -- no committer has read this stream yet: all of it is waiting
  local first = redis.call('XRANGE', STREAM, '-', '+', 'COUNT', 1)
  return {entries, now, 0, 0, '', first[1][1], entries, state}
end

local oldest = ''
if info['pending'] > 0 then oldest = redis.call('XPENDING', STREAM, group)[2] end
local unread = redis.call('XRANGE', STREAM, '(' .. info['last-delivered-id'], '+', 'COUNT', 1)
local first_unread = unread[1] and unread[1][1] or ''
local count = info['lag']
if not count then count = -1 end
return {entries, now, 1, info['pending'], oldest, first_unread, count, state}
