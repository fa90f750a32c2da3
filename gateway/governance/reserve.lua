-- Admit a batch of requests, each atomically and in order: for each, reap expired
-- reservations, check every rate window and every budget, then (only if all pass) record the
-- request in the windows and reserve its worst case in the budgets. All or nothing per request:
-- a refusal changes nothing. One script call serves every request that arrived together on this
-- replica (one round trip for all of them); the script as a whole is atomic across replicas.
--
-- KEYS, for each request in order: for each budget b (1..nb): the budget's hash {used,
--       reserved}; then for each budget its zset of reservations (member "<id>:<amount>",
--       score = expiry ms); then for each window w (1..nw): its zset of entries (member
--       "<id>:<cost>", score = time ms) and its string (the sum of costs in the window).
-- ARGV: n, now_ms, then for each request: id, expiry_ms, nb, "limit amount ttl_s ..."
--       (nb triples), nw, "limit cost window_ms ..." (nw triples)
-- Returns one reply per request: {"ok", remaining_1, reset_ms_1, ... (per window), total_1, ...
-- (per budget, after this reservation)} or {"budget", b, current, limit}
-- or {"rate", w, current, limit, wait_ms}.

local function amount_of(member)
  return tonumber(string.match(member, ":(%d+)$")) or 0
end

-- The numbers of budgets and windows come as one space-separated string each (fewer arguments
-- to pack and parse per call than one argument per number).
local function numbers(spec)
  local out = {}
  for n in string.gmatch(spec, "%d+") do out[#out + 1] = tonumber(n) end
  return out
end

local function admit(K, now, id, expiry, nb, bspec, nw, wspec)
  local blimit, bamount, bttl = {}, {}, {}
  for b = 1, nb do
    blimit[b] = bspec[3 * b - 2]; bamount[b] = bspec[3 * b - 1]; bttl[b] = bspec[3 * b]
  end
  local wlimit, wcost, wlen = {}, {}, {}
  for w = 1, nw do
    wlimit[w] = wspec[3 * w - 2]; wcost[w] = wspec[3 * w - 1]; wlen[w] = wspec[3 * w]
  end

  -- Reservations of replicas that died (or never settled) are returned when they expire.
  local totals = {}
  for b = 1, nb do
    local expired = redis.call("ZRANGEBYSCORE", K[nb + b], "-inf", now)
    if #expired > 0 then
      local total = 0
      for _, m in ipairs(expired) do total = total + amount_of(m) end
      redis.call("HINCRBY", K[b], "reserved", -total)
      redis.call("ZREMRANGEBYSCORE", K[nb + b], "-inf", now)
    end
  end

  -- Slide the windows.
  local current = {}
  for w = 1, nw do
    local z, s = K[2 * nb + 2 * w - 1], K[2 * nb + 2 * w]
    local cutoff = now - wlen[w]
    local old = redis.call("ZRANGEBYSCORE", z, "-inf", cutoff)
    if #old > 0 then
      local total = 0
      for _, m in ipairs(old) do total = total + amount_of(m) end
      current[w] = redis.call("DECRBY", s, total)
      redis.call("ZREMRANGEBYSCORE", z, "-inf", cutoff)
    else
      current[w] = tonumber(redis.call("GET", s) or "0")
    end
  end

  for w = 1, nw do
    if current[w] + wcost[w] > wlimit[w] then
      -- Wait until enough of the oldest entries leave the window.
      local z = K[2 * nb + 2 * w - 1]
      local need = current[w] + wcost[w] - wlimit[w]
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
      return {"rate", w, current[w], wlimit[w], wait}
    end
  end

  for b = 1, nb do
    local v = redis.call("HMGET", K[b], "used", "reserved")
    totals[b] = (tonumber(v[1]) or 0) + (tonumber(v[2]) or 0)
    if totals[b] + bamount[b] > blimit[b] then
      return {"budget", b, totals[b], blimit[b]}
    end
  end

  local out = {"ok"}
  for w = 1, nw do
    local z, s = K[2 * nb + 2 * w - 1], K[2 * nb + 2 * w]
    redis.call("ZADD", z, now, id .. ":" .. wcost[w])
    local total = redis.call("INCRBY", s, wcost[w])
    redis.call("PEXPIRE", z, wlen[w] + 10000)
    redis.call("PEXPIRE", s, wlen[w] + 10000)
    local oldest = redis.call("ZRANGE", z, 0, 0, "WITHSCORES")
    table.insert(out, wlimit[w] - total)
    table.insert(out, tonumber(oldest[2]) + wlen[w] - now)
  end
  for b = 1, nb do
    table.insert(out, totals[b] + bamount[b])
    -- The entry is added even for an amount of 0: settle.lua charges a budget only if it
    -- removes this entry (its idempotency without a per-call marker).
    if bamount[b] > 0 then
      redis.call("HINCRBY", K[b], "reserved", bamount[b])
    end
    redis.call("ZADD", K[nb + b], expiry, id .. ":" .. bamount[b])
    redis.call("EXPIRE", K[b], bttl[b])
    redis.call("EXPIRE", K[nb + b], bttl[b])
  end
  return out
end

local n = tonumber(ARGV[1])
local now = tonumber(ARGV[2])
local a, k = 3, 0
local replies = {}
for r = 1, n do
  local id, expiry, nb = ARGV[a], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local bspec, nw = numbers(ARGV[a + 3]), tonumber(ARGV[a + 4])
  local wspec = numbers(ARGV[a + 5])
  a = a + 6
  local K = {}
  for i = 1, 2 * nb + 2 * nw do K[i] = KEYS[k + i] end
  k = k + 2 * nb + 2 * nw
  replies[r] = admit(K, now, id, expiry, nb, bspec, nw, wspec)
end
return replies
