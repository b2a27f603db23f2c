/**
 * Lua's `unpack` in Redis gives at most ~8 000 values (LUAI_MAXCSTACK): one command built from a
 * whole delivery (4 096 lines a syslog batch, each an event or an instance) can be longer. A
 * command whose arguments are independent items — ZADD's score/member pairs, HSET's field/value
 * pairs — goes out in slices of at most 6 000 items after its `head` first arguments (a slice is
 * an even count, so pairs stay whole), which does what the one call would have. Its reply is
 * not returned: these writes' callers read none.
 */
export const CALL_LONG_LUA = `
local function callLong(t, head)
  if #t <= 7000 then redis.call(unpack(t)) return end
  local i = head + 1
  while i <= #t do
    local s = {unpack(t, 1, head)}
    for j = i, math.min(i + 5999, #t) do s[#s + 1] = t[j] end
    redis.call(unpack(s))
    i = i + 6000
  end
end
`;
