-- GCRA over several limits, atomically; mirrors agent_runtime.limits.rate.base.gcra.
-- KEYS[i]: TAT of limit i (microseconds since the epoch, Redis server clock).
-- ARGV: mode ("acquire" | "peek" | "charge" | "refund"), cost, then per limit: limit, period_us.
-- Returns "allowed blocked retry_after_us remaining" as one string (one reply line to parse, not five):
-- allowed is 0/1, blocked the 1-based index of the refusing limit (0 = none).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local mode = ARGV[1]
local cost = tonumber(ARGV[2])
local units = cost
if mode == 'peek' then units = 1 end
local step = cost
if mode == 'refund' then step = -cost end
local new_tats = {}
local wait, blocked, remaining = 0, 0, nil
for i = 1, #KEYS do
  local limit = tonumber(ARGV[1 + 2 * i])
  local period = tonumber(ARGV[2 + 2 * i])
  local interval = period / limit
  local tat = tonumber(redis.call('GET', KEYS[i])) or now
  if tat < now then tat = now end
  -- offsets from now, with slack for rounding (stored TATs are whole microseconds): 1 us or interval/1000
  local ahead = tat - now
  local early = ahead + units * interval - period
  if early > math.max(1, interval / 1000) and early > wait then
    wait = early
    blocked = i
  end
  -- a refund never fills a limit above its burst
  new_tats[i] = math.max(tat + step * interval, now)
  local after = math.max(ahead + step * interval, 0)
  local left = math.floor((period - after) / interval + 0.000001)
  if remaining == nil or left < remaining then remaining = left end
end
local unconditional = mode == 'charge' or mode == 'refund'
if unconditional or (mode == 'acquire' and blocked == 0) then
  for i = 1, #KEYS do
    local ttl = math.ceil((new_tats[i] - now) / 1000) + 1000
    redis.call('SET', KEYS[i], string.format('%.0f', new_tats[i]), 'PX', ttl)
  end
end
local allowed = 0
if blocked == 0 or unconditional then allowed = 1 end
if remaining < 0 then remaining = 0 end
return string.format('%d %d %d %d', allowed, blocked, math.ceil(wait), remaining)
