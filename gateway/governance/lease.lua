-- Leases: blocks of a budget or of a rate window carved out atomically for one replica, which
-- then spends them locally (gateway/governance/leases.py). One call carries many operations, of
-- any pools, each applied in order; the call as a whole is atomic across replicas.
--
-- A budget lease is an entry of the budget's reservation set exactly like one call's
-- reservation (member "<id>:<amount>", score = expiry ms, counted in the hash's "reserved"), so
-- reserve.lua's reaper and every other replica's admissions see it. A window lease of K units
-- valid until T is an entry of cost K in the window's set scored T (counted in every 60 s
-- window that may contain one of its uses: conservative).
--
-- ARGV: n, now_ms, then per operation a kind and its arguments; KEYS: two per operation.
--   "bg" grant budget   KEYS hash, set   ARGV id limit want min expiry_ms ttl_s unit
--        -> {granted (0: denied), used + reserved after}
--   "br" return budget  KEYS hash, set   ARGV id amount spent
--        -> {1 if this call removed the entry and charged the spend, else 0 (reaped)}
--   "bs" shrink budget  KEYS hash, set   ARGV id amount spent new_id keep expiry_ms ttl_s
--        -> {1 if the entry was still held: now "<new_id>:<keep>" and the spend charged, else 0}
--   "bn" renew budget   KEYS hash, set   ARGV id amount expiry_ms ttl_s  -> {1 if still held}
--   "wg" grant window   KEYS set, sum    ARGV id limit want min window_ms until_ms unit
--        -> {granted (0: denied), sum after, ms until the oldest entry leaves}
--   "wr" return window  KEYS set, sum    ARGV id amount used last_use_ms window_ms
--        -> {1 if this call replaced the entry by its use, else 0}
-- A grant is at most a sixteenth of what is free, rounded down to whole units (calls' worth),
-- and refused below "min": near exhaustion,
-- calls take the exact per-call path (reserve.lua) and nothing is carved out.

local DIVISOR = 16

local function amount_of(member)
  return tonumber(string.match(member, ":(%d+)$")) or 0
end

local function reap(h, z, now)
  local expired = redis.call("ZRANGEBYSCORE", z, "-inf", now)
  if #expired > 0 then
    local total = 0
    for _, m in ipairs(expired) do total = total + amount_of(m) end
    redis.call("HINCRBY", h, "reserved", -total)
    redis.call("ZREMRANGEBYSCORE", z, "-inf", now)
  end
end

local function slide(z, s, now, wlen)
  local cutoff = now - wlen
  local old = redis.call("ZRANGEBYSCORE", z, "-inf", cutoff)
  if #old > 0 then
    local total = 0
    for _, m in ipairs(old) do total = total + amount_of(m) end
    redis.call("ZREMRANGEBYSCORE", z, "-inf", cutoff)
    return tonumber(redis.call("DECRBY", s, total))
  end
  return tonumber(redis.call("GET", s) or "0")
end

-- Whole calls' worth ("unit", the last call's amount): no slack sits in a lease that no call
-- of that size can use.
local function grant_size(free, want, min, unit)
  local grant = math.min(want, math.floor(free / DIVISOR))
  if unit > 1 then grant = grant - grant % unit end
  if grant < min or grant <= 0 then return 0 end
  return grant
end

local n, now = tonumber(ARGV[1]), tonumber(ARGV[2])
local a, k = 3, 1
local out = {}
for r = 1, n do
  local kind = ARGV[a]
  local h, z = KEYS[k], KEYS[k + 1]
  k = k + 2
  if kind == "bg" then
    local id, limit, want = ARGV[a + 1], tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
    local min, expiry, ttl = tonumber(ARGV[a + 4]), tonumber(ARGV[a + 5]), tonumber(ARGV[a + 6])
    local unit = tonumber(ARGV[a + 7])
    a = a + 8
    reap(h, z, now)
    local v = redis.call("HMGET", h, "used", "reserved")
    local total = (tonumber(v[1]) or 0) + (tonumber(v[2]) or 0)
    local grant = grant_size(limit - total, want, min, unit)
    if grant > 0 then
      redis.call("ZADD", z, expiry, id .. ":" .. grant)
      redis.call("HINCRBY", h, "reserved", grant)
      redis.call("EXPIRE", h, ttl)
      redis.call("EXPIRE", z, ttl)
    end
    out[r] = {grant, total + grant}
  elseif kind == "br" then
    local member, amount = ARGV[a + 1] .. ":" .. ARGV[a + 2], tonumber(ARGV[a + 2])
    local spent = tonumber(ARGV[a + 3])
    a = a + 4
    local removed = redis.call("ZREM", z, member)
    if removed == 1 then
      if amount > 0 then redis.call("HINCRBY", h, "reserved", -amount) end
      if spent > 0 then redis.call("HINCRBY", h, "used", spent) end
    end
    out[r] = {removed}
  elseif kind == "bs" then
    -- A lease past its validity with calls still in flight keeps only what they may spend.
    local member, amount = ARGV[a + 1] .. ":" .. ARGV[a + 2], tonumber(ARGV[a + 2])
    local spent, new_id, keep = tonumber(ARGV[a + 3]), ARGV[a + 4], tonumber(ARGV[a + 5])
    local expiry, ttl = tonumber(ARGV[a + 6]), tonumber(ARGV[a + 7])
    a = a + 8
    local removed = redis.call("ZREM", z, member)
    if removed == 1 then
      redis.call("HINCRBY", h, "reserved", keep - amount)
      if spent > 0 then redis.call("HINCRBY", h, "used", spent) end
      redis.call("ZADD", z, expiry, new_id .. ":" .. ARGV[a - 3])
      redis.call("EXPIRE", h, ttl)
      redis.call("EXPIRE", z, ttl)
    end
    out[r] = {removed}
  elseif kind == "bn" then
    local member = ARGV[a + 1] .. ":" .. ARGV[a + 2]
    local expiry, ttl = tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
    a = a + 5
    local held = 0
    if redis.call("ZSCORE", z, member) then
      redis.call("ZADD", z, expiry, member)
      redis.call("EXPIRE", h, ttl)
      redis.call("EXPIRE", z, ttl)
      held = 1
    end
    out[r] = {held}
  elseif kind == "wg" then
    -- h is the window's set and z its sum here.
    local id, limit, want = ARGV[a + 1], tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
    local min, wlen, till = tonumber(ARGV[a + 4]), tonumber(ARGV[a + 5]), tonumber(ARGV[a + 6])
    local unit = tonumber(ARGV[a + 7])
    a = a + 8
    local sum = slide(h, z, now, wlen)
    local grant = grant_size(limit - sum, want, min, unit)
    if grant > 0 then
      redis.call("ZADD", h, till, id .. ":" .. grant)
      sum = tonumber(redis.call("INCRBY", z, grant))
      redis.call("PEXPIRE", h, till - now + wlen + 1000)
      redis.call("PEXPIRE", z, till - now + wlen + 1000)
    end
    local oldest = redis.call("ZRANGE", h, 0, 0, "WITHSCORES")
    local reset = wlen
    if #oldest > 0 then reset = tonumber(oldest[2]) + wlen - now end
    out[r] = {grant, sum, reset}
  elseif kind == "wr" then
    local id, amount, used = ARGV[a + 1], tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
    local member = id .. ":" .. ARGV[a + 2]
    local last, wlen = tonumber(ARGV[a + 4]), tonumber(ARGV[a + 5])
    a = a + 6
    local removed = redis.call("ZREM", h, member)
    if removed == 1 then
      redis.call("DECRBY", z, amount)
      if used > 0 and last > now - wlen then
        -- Its uses stay counted, at the last one's time (in every window holding any of them).
        redis.call("ZADD", h, last, id .. "u:" .. ARGV[a - 3])
        redis.call("INCRBY", z, used)
      end
    end
    out[r] = {removed}
  else
    return redis.error_reply("lease.lua: unknown operation " .. tostring(kind))
  end
end
return out
