-- Settle a batch of requests: for each, release its reservation and charge its actual usage,
-- once. Idempotent without a marker: a budget is charged only if this call removed the request's
-- reservation entry from that budget's set (ZREM returns 1); a second settle, or a settle after
-- the reservation expired and was reaped, finds nothing and changes nothing. So no state per
-- settled call outlives its reservation.
--
-- KEYS: for each request r in order, for each of its budgets b: the budget's hash {used,
--       reserved}, then its set of reservations (two keys per budget, in pairs).
-- ARGV: n, then for each request: id, nb, "reserved_amount actual ..." (nb pairs, space-separated)
-- Returns one number per request: 1 if this call settled it, 0 if there was nothing to settle.

local n = tonumber(ARGV[1])
local k = 0
local out = {}
for r = 1, n do
  local id, nb = ARGV[3 * r - 1], tonumber(ARGV[3 * r])
  local amounts = {}
  for x in string.gmatch(ARGV[3 * r + 1], "%d+") do amounts[#amounts + 1] = tonumber(x) end
  local settled = 0
  for b = 1, nb do
    local h, z = KEYS[k + 1], KEYS[k + 2]
    k = k + 2
    local reserved, actual = amounts[2 * b - 1], amounts[2 * b]
    if redis.call("ZREM", z, id .. ":" .. reserved) == 1 then
      settled = 1
      if reserved > 0 then redis.call("HINCRBY", h, "reserved", -reserved) end
      if actual > 0 then redis.call("HINCRBY", h, "used", actual) end
    end
  end
  out[r] = settled
end
return out
