-- Admit one request atomically: reap expired reservations, check every rate window and every
-- budget, then (only if all pass) record the request in the windows and reserve its worst case
-- in the budgets. All or nothing: a refusal changes nothing.
--
-- KEYS: for each budget b (1..nb): KEYS[b] = hash {used, reserved}, KEYS[nb+b] = zset of
--       reservations (member "<id>:<amount>", score = expiry ms);
--       for each window w (1..nw): KEYS[2nb+2w-1] = zset of entries (member "<id>:<cost>",
--       score = time ms), KEYS[2nb+2w] = string: the sum of costs in the window.
-- ARGV: now_ms, id, expiry_ms, nb, "limit amount ttl_s ..." (nb triples), nw,
--       "limit cost window_ms ..." (nw triples)
-- Returns {"ok", remaining_1, reset_ms_1, ... (per window), total_1, ... (per budget, after
-- this reservation)} or {"budget", b, current, limit}
-- or {"rate", w, current, limit, wait_ms}.

local function amount_of(member)
  return tonumber(string.match(member, ":(%d+)$")) or 0
end

local now = tonumber(ARGV[1])
local id = ARGV[2]
local expiry = tonumber(ARGV[3])
local nb = tonumber(ARGV[4])
local nw = tonumber(ARGV[6])

-- The numbers of budgets and windows come as one space-separated string each (fewer arguments
-- to pack and parse per call than one argument per number).
local function numbers(spec)
  local out = {}
  for n in string.gmatch(spec, "%d+") do out[#out + 1] = tonumber(n) end
  return out
end
local bspec, wspec = numbers(ARGV[5]), numbers(ARGV[7])
local blimit, bamount, bttl = {}, {}, {}
for b = 1, nb do
  blimit[b] = bspec[3 * b - 2]; bamount[b] = bspec[3 * b - 1]; bttl[b] = bspec[3 * b]
end
local wlimit, wcost, wlen = {}, {}, {}
for w = 1, nw do
  wlimit[w] = wspec[3 * w - 2]; wcost[w] = wspec[3 * w - 1]; wlen[w] = wspec[3 * w]
end

-- Reservations of replicas that died (or never settled) are returned when they expire.
for b = 1, nb do
  local expired = redis.call("ZRANGEBYSCORE", KEYS[nb + b], "-inf", now)
  if #expired > 0 then
    local total = 0
    for _, m in ipairs(expired) do total = total + amount_of(m) end
    redis.call("HINCRBY", KEYS[b], "reserved", -total)
    redis.call("ZREMRANGEBYSCORE", KEYS[nb + b], "-inf", now)
  end
end

-- Slide the windows.
for w = 1, nw do
  local z, s = KEYS[2 * nb + 2 * w - 1], KEYS[2 * nb + 2 * w]
  local cutoff = now - wlen[w]
  local old = redis.call("ZRANGEBYSCORE", z, "-inf", cutoff)
  if #old > 0 then
    local total = 0
    for _, m in ipairs(old) do total = total + amount_of(m) end
    redis.call("DECRBY", s, total)
    redis.call("ZREMRANGEBYSCORE", z, "-inf", cutoff)
  end
end

for w = 1, nw do
  local z, s = KEYS[2 * nb + 2 * w - 1], KEYS[2 * nb + 2 * w]
  local current = tonumber(redis.call("GET", s) or "0")
  if current + wcost[w] > wlimit[w] then
    -- Wait until enough of the oldest entries leave the window.
    local need = current + wcost[w] - wlimit[w]
    local wait = wlen[w]
    local entries = redis.call("ZRANGE", z, 0, -1, "WITHSCORES")
    local freed = 0
    for k = 1, #entries, 2 do
      freed = freed + amount_of(entries[k])
      if freed >= need then
        wait = tonumber(entries[k + 1]) + wlen[w] - now
        break
      end
    end
    return {"rate", w, current, wlimit[w], wait}
  end
end

for b = 1, nb do
  local v = redis.call("HMGET", KEYS[b], "used", "reserved")
  local current = (tonumber(v[1]) or 0) + (tonumber(v[2]) or 0)
  if current + bamount[b] > blimit[b] then
    return {"budget", b, current, blimit[b]}
  end
end

local out = {"ok"}
for w = 1, nw do
  local z, s = KEYS[2 * nb + 2 * w - 1], KEYS[2 * nb + 2 * w]
  redis.call("ZADD", z, now, id .. ":" .. wcost[w])
  local total = redis.call("INCRBY", s, wcost[w])
  redis.call("PEXPIRE", z, wlen[w] + 1000)
  redis.call("PEXPIRE", s, wlen[w] + 1000)
  local oldest = redis.call("ZRANGE", z, 0, 0, "WITHSCORES")
  table.insert(out, wlimit[w] - total)
  table.insert(out, tonumber(oldest[2]) + wlen[w] - now)
end
for b = 1, nb do
  local v = redis.call("HMGET", KEYS[b], "used", "reserved")
  table.insert(out, (tonumber(v[1]) or 0) + (tonumber(v[2]) or 0) + bamount[b])
  if bamount[b] > 0 then
    redis.call("HINCRBY", KEYS[b], "reserved", bamount[b])
    redis.call("ZADD", KEYS[nb + b], expiry, id .. ":" .. bamount[b])
  end
  redis.call("EXPIRE", KEYS[b], bttl[b])
  redis.call("EXPIRE", KEYS[nb + b], bttl[b])
end
return out
