-- Settle one request: release its reservation (unless it expired already) and charge the actual
-- usage, once. Idempotent: a marker key makes a second settle of the same id change nothing.
--
-- KEYS: for each budget b (1..nb): KEYS[b] = hash {used, reserved}, KEYS[nb+b] = reservations;
--       KEYS[2nb+1] = the settled marker of this request.
-- ARGV: id, nb, marker_ttl_s, "reserved_amount actual ..." (nb pairs, space-separated)
-- Returns 1 if this call settled the request, 0 if it had been settled before.

local id = ARGV[1]
local nb = tonumber(ARGV[2])
if redis.call("SET", KEYS[2 * nb + 1], "1", "NX", "EX", tonumber(ARGV[3])) == false then
  return 0
end
local amounts = {}
for n in string.gmatch(ARGV[4], "%d+") do amounts[#amounts + 1] = tonumber(n) end
for b = 1, nb do
  local reserved, actual = amounts[2 * b - 1], amounts[2 * b]
  if reserved > 0 and redis.call("ZREM", KEYS[nb + b], id .. ":" .. reserved) == 1 then
    redis.call("HINCRBY", KEYS[b], "reserved", -reserved)
  end
  if actual > 0 then
    redis.call("HINCRBY", KEYS[b], "used", actual)
  end
end
return 1
