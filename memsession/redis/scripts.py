"""The Lua scripts that make each Redis session operation atomic."""

from __future__ import annotations

__all__ = [
    "CACHED_READ",
    "CACHED_TOUCH",
    "CLEAR",
    "CREATE",
    "DATA",
    "DESTROY_IF_EMPTY",
    "READ",
    "TAKE",
    "TOUCH",
    "WRITE",
]

DATA = "d:"
CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'm:c', ARGV[1], 'm:u', ARGV[1], unpack(ARGV, 3))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""
READ = """
local u = redis.call('HGET', KEYS[1], 'm:u')
if not u then return false end
if tonumber(ARGV[2]) >= 0 and tonumber(ARGV[1]) - tonumber(u) > tonumber(ARGV[2]) then
  redis.call('DEL', KEYS[1])
  return 0
end
redis.call('HSET', KEYS[1], 'm:u', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return redis.call('HGETALL', KEYS[1])
"""
TOUCH = """
if redis.call('HEXISTS', KEYS[1], 'm:u') == 0 then return 0 end
redis.call('HSET', KEYS[1], 'm:u', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""
# Never recreate a session that expired or was destroyed meanwhile: a write
# to a missing hash would leave a partial one behind, with no expiry.
WRITE = """
if redis.call('HEXISTS', KEYS[1], 'm:u') == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
"""
DESTROY_IF_EMPTY = """
if redis.call('HEXISTS', KEYS[1], 'm:u') == 0 then return 0 end
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.sub(field, 1, 2) == 'd:' then return 0 end
end
redis.call('DEL', KEYS[1])
return 1
"""
CLEAR = """
local gone = 0
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.sub(field, 1, 2) == 'd:' then
    redis.call('HDEL', KEYS[1], field)
    gone = gone + 1
  end
end
return gone
"""
# Regenerate: the data as stored and the old id gone, in one step.
TAKE = """
local all = redis.call('HGETALL', KEYS[1])
if #all == 0 then return false end
redis.call('DEL', KEYS[1])
return all
"""

# The near cache (CachedRedisProvider) keeps a session's last use in a second
# key, KEYS[2], outside the tracked prefixes: recording a use must not
# invalidate every worker's copy of the hash. Changing the hash's TTL does
# invalidate, so it is pushed out (to ARGV hash ttl) only once less than
# ARGV floor is left: at most once per refresh interval, and never below the
# use key's TTL, so the hash outlives every session within its lifetime.
# ARGV: now, idle limit (-1: none), use ttl ms, hash ttl ms, floor ms.
CACHED_READ = """
local all = redis.call('HGETALL', KEYS[1])
if #all == 0 then return false end
local now = tonumber(ARGV[1])
local used = tonumber(redis.call('GET', KEYS[2]) or '0')
for i = 1, #all, 2 do
  if all[i] == 'm:u' then used = math.max(used, tonumber(all[i + 1])) end
end
if tonumber(ARGV[2]) >= 0 and now - used > tonumber(ARGV[2]) then
  redis.call('DEL', KEYS[1], KEYS[2])
  return 0
end
redis.call('SET', KEYS[2], tostring(math.max(now, used)), 'PX', ARGV[3])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[5]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
end
return all
"""
# A use served from a worker's memory, recorded. ARGV: now, use ttl ms,
# hash ttl ms, floor ms (as above).
CACHED_TOUCH = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local used = tonumber(redis.call('GET', KEYS[2]) or '0')
redis.call('SET', KEYS[2], tostring(math.max(tonumber(ARGV[1]), used)), 'PX', ARGV[2])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[4]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return 1
"""
