-- stream_find: the entries of an orders stream that no committer has acknowledged yet and
-- whose order holds one of the given tickets, newest first: check-in's way to a ticket sold
-- a moment ago, before the committer has written it to Postgres.
-- KEYS: 1 orders stream.
-- ARGV: the committers' group, max_scan (entries looked at, at most), then ticket ids.
-- Returns the matching entries' data fields (orders as JSON).
local STREAM = KEYS[1]
local group, max_scan = ARGV[1], tonumber(ARGV[2])
if redis.call('XLEN', STREAM) == 0 then return {} end

-- Everything older than the oldest entry still pending is acknowledged: in Postgres.
local floor = '-'
for _, g in ipairs(redis.call('XINFO', 'GROUPS', STREAM)) do
  local f = {}
  for i = 1, #g, 2 do f[g[i]] = g[i + 1] end
  if f['name'] == group then
    if f['pending'] > 0 then
      floor = redis.call('XPENDING', STREAM, group)[2]
    else
      floor = '(' .. f['last-delivered-id']
    end
  end
end

local ids, wanted = {}, {}
for i = 3, #ARGV do
  ids[#ids + 1] = '"ticket_id":"' .. ARGV[i] .. '"'
  wanted[ARGV[i]] = true
end
local function holds_one(data)
  if #ids <= 4 then  -- an online scan: a plain search per ticket is the cheapest
    for _, needle in ipairs(ids) do
      if string.find(data, needle, 1, true) then return true end
    end
    return false
  end
  for tid in string.gmatch(data, '"ticket_id":"([^"]+)"') do
    if wanted[tid] then return true end
  end
  return false
end

local found, seen, top = {}, 0, '+'
while seen < max_scan do
  local page = redis.call('XREVRANGE', STREAM, top, floor, 'COUNT', math.min(100, max_scan - seen))
  if #page == 0 then break end
  for _, entry in ipairs(page) do
    local fields = entry[2]
    for i = 1, #fields, 2 do
      if fields[i] == 'data' and holds_one(fields[i + 1]) then found[#found + 1] = fields[i + 1] end
    end
  end
  seen = seen + #page
  top = '(' .. page[#page][1]
end
return found
