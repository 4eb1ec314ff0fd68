r"""The Lua scripts of ``RedisCheckpointSaver`` (key layout in ``checkpoint_redis.py``).

Every script touches only the keys of one thread (one hash tag, one Cluster slot); the names of
the thread's write hashes are ``ARGV`` prefix + member, built inside the script.
"""

from __future__ import annotations

__all__ = ["DELETE_THREAD", "GET_TUPLE", "PRUNE"]

GET_TUPLE = r"""
local member
if ARGV[2] ~= '' then
  member = ARGV[1] .. '\0' .. ARGV[2]
else
  local r = redis.call('ZREVRANGEBYLEX', KEYS[1], '(' .. ARGV[1] .. '\1', '[' .. ARGV[1] .. '\0', 'LIMIT', 0, 1)
  if #r == 0 then return false end
  member = r[1]
end
local rec = redis.call('HGET', KEYS[2], member)
if not rec then return false end
local writes = redis.call('HGETALL', ARGV[3] .. member)
local bf = redis.call('HGET', KEYS[3], member) or ''
local vals = {}
if bf ~= '' then
  local fields = {}
  for f in string.gmatch(bf, '[^\1]+') do fields[#fields + 1] = f end
  vals = redis.call('HMGET', KEYS[4], unpack(fields))
end
return {member, rec, writes, bf, vals}
"""

DELETE_THREAD = r"""
local ks = redis.call('SMEMBERS', KEYS[5])
for i = 1, #ks, 500 do redis.call('DEL', unpack(ks, i, math.min(i + 499, #ks))) end
return redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5])
"""

# The rule of retention.py: ARGV[1] = keep_last, ARGV[2] = the write-hash prefix. Members sort by
# bytes, so each namespace's ids come out grouped and oldest first; ids are uuids of one format.
PRUNE = r"""
local keep = tonumber(ARGV[1])
local groups, order = {}, {}
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local ns = string.sub(m, 1, string.find(m, '\0', 1, true) - 1)
  if not groups[ns] then groups[ns] = {}; order[#order + 1] = ns end
  table.insert(groups[ns], m)
end
local root, cutoff = groups[''], nil
if root and #root >= keep then cutoff = string.sub(root[#root - keep + 1], 2) end
local doomed, kept = {}, {}
for _, ns in ipairs(order) do
  local list = groups[ns]
  for i, m in ipairs(list) do
    if i <= #list - keep or (ns ~= '' and cutoff and string.sub(m, #ns + 2) < cutoff) then
      doomed[#doomed + 1] = m
    else
      kept[#kept + 1] = m
    end
  end
end
if #doomed == 0 then return 0 end
local needed, unneeded = {}, {}
for _, m in ipairs(kept) do
  for f in string.gmatch(redis.call('HGET', KEYS[3], m) or '', '[^\1]+') do needed[f] = true end
end
for _, m in ipairs(doomed) do
  for f in string.gmatch(redis.call('HGET', KEYS[3], m) or '', '[^\1]+') do
    if not needed[f] then needed[f] = true; unneeded[#unneeded + 1] = f end
  end
  redis.call('DEL', ARGV[2] .. m)
  redis.call('SREM', KEYS[5], ARGV[2] .. m)
end
for i = 1, #doomed, 500 do
  local j = math.min(i + 499, #doomed)
  redis.call('ZREM', KEYS[1], unpack(doomed, i, j))
  redis.call('HDEL', KEYS[2], unpack(doomed, i, j))
  redis.call('HDEL', KEYS[3], unpack(doomed, i, j))
end
for i = 1, #unneeded, 500 do redis.call('HDEL', KEYS[4], unpack(unneeded, i, math.min(i + 499, #unneeded))) end
return #doomed
"""
