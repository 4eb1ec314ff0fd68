-- Quota ledger, atomically over several buckets. Each bucket i has two keys:
--   KEYS[2i-1]: hash {spent, reserved, r:<reservation id> = amount}
--   KEYS[2i]:   sorted set of reservation ids scored by expiry (ms, Redis server clock)
-- ARGV[1]: op ("reserve" | "settle" | "adjust" | "status"), ARGV[2]: reservation id,
-- ARGV[3]: ttl ms (reserve) or the op id (settle, adjust: "" for none), then per bucket: limit,
-- amount, key expiry (unix ms). A settle/adjust whose op id the first bucket's hash holds already
-- (field a:<op id>, expiring with the hash) changes nothing: a replayed journal entry counts once.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local op, rid, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3])
local n = #KEYS / 2

local function purge(h, z)
  local expired = redis.call('ZRANGEBYSCORE', z, '-inf', now)
  for _, id in ipairs(expired) do
    local amount = redis.call('HGET', h, 'r:' .. id)
    if amount then
      redis.call('HINCRBY', h, 'reserved', -tonumber(amount))
      redis.call('HDEL', h, 'r:' .. id)
    end
  end
  if #expired > 0 then redis.call('ZREMRANGEBYSCORE', z, '-inf', now) end
end

local function drop(h, z)
  local amount = redis.call('HGET', h, 'r:' .. rid)
  if amount then
    redis.call('HINCRBY', h, 'reserved', -tonumber(amount))
    redis.call('HDEL', h, 'r:' .. rid)
    redis.call('ZREM', z, rid)
  end
end

local function num(h, field)
  return tonumber(redis.call('HGET', h, field)) or 0
end

if op == 'status' then
  local out = {}
  for i = 1, n do
    purge(KEYS[2 * i - 1], KEYS[2 * i])
    out[2 * i - 1] = num(KEYS[2 * i - 1], 'spent')
    out[2 * i] = num(KEYS[2 * i - 1], 'reserved')
  end
  return out
end

if op == 'settle' or op == 'adjust' then
  if ARGV[3] ~= '' then
    if redis.call('HSETNX', KEYS[1], 'a:' .. ARGV[3], 1) == 0 then return {0, 1} end
    redis.call('PEXPIREAT', KEYS[1], tonumber(ARGV[6]))
  end
  for i = 1, n do
    local h, z = KEYS[2 * i - 1], KEYS[2 * i]
    if op == 'settle' then drop(h, z) end
    local amount = tonumber(ARGV[3 + 3 * i - 1])
    if amount ~= 0 then
      redis.call('HINCRBY', h, 'spent', amount)
      redis.call('PEXPIREAT', h, tonumber(ARGV[3 + 3 * i]))
    end
  end
  return {0, 0}
end

-- reserve: check every bucket first, then write all of them (all or nothing)
for i = 1, n do
  local h, z = KEYS[2 * i - 1], KEYS[2 * i]
  purge(h, z)
  local limit, amount = tonumber(ARGV[3 + 3 * i - 2]), tonumber(ARGV[3 + 3 * i - 1])
  local spent = num(h, 'spent')
  local reserved = num(h, 'reserved') - (tonumber(redis.call('HGET', h, 'r:' .. rid)) or 0)
  if spent + reserved + amount > limit then
    local only_inflight = 0
    if spent + amount <= limit then only_inflight = 1 end
    return {i, only_inflight}
  end
end
for i = 1, n do
  local h, z = KEYS[2 * i - 1], KEYS[2 * i]
  drop(h, z)
  local amount, expire_at = tonumber(ARGV[3 + 3 * i - 1]), tonumber(ARGV[3 + 3 * i])
  redis.call('HINCRBY', h, 'reserved', amount)
  redis.call('HSET', h, 'r:' .. rid, amount)
  redis.call('ZADD', z, now + ttl, rid)
  redis.call('PEXPIREAT', h, expire_at)
  redis.call('PEXPIREAT', z, expire_at)
end
return {0, 0}
