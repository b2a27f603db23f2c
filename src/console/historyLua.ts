/**
 * The firing history's write side, as Lua functions pasted into the scripts that make the
 * decisions (the threshold script decides `cooldown`, admitFiring decides `enqueued`, `held`,
 * `flapping`, `dry_run`, `silenced` and `duplicate`, the rejection script `rejected`). Recording in
 * the deciding script is what keeps it on the round trip the decision already makes and exactly
 * as idempotent as the decision: a retried frame that changes no decision records nothing.
 *
 * A record is one stream entry. A burst of decisions of one kind in one spell for one
 * rule+app+target (the matches of one cooldown, a run of held or flapping firings, the duplicate
 * submissions of one firing, a run of rejections of one rule+app) is one entry: the rule+app+target's
 * `spell` hash holds, per kind, the open spell (`s:<kind>` = spell id|entry id|last ms) and, per
 * entry, the count and the time of the last one (`n:<entry id>` = count|last ms); the stream entry
 * holds the first. The reader joins the two (src/console/history.ts).
 */
export const HISTORY_BOUNDS = Object.freeze({
  /** XADD MAXLEN ~ this: the stream's hard bound in entries (approximate trim, so a little above). */
  maxEntries: 100_000,
  /** Entries older than this are trimmed (XTRIM MINID ~), whatever the count. */
  retentionMs: 30 * 24 * 3600_000,
  /** Per rule+app+target, the counts of the last this many aggregated records are kept. */
  spellCounts: 32,
  /** Trigger line and reason kept in a record (bytes). */
  lineBytes: 1024,
  /** A gap longer than this ends a run of rejections of one rule+app. */
  rejectedGapMs: 10 * 60_000,
});

/**
 * histOpen(spell, kind, sid, gap, at) → the entry id of the open spell of that kind when its id is
 * sid and its last decision is at most gap ms before at, else nil.
 * histNew(stream, spell, kind, sid, at, fields, maxlen, retention) → appends the record, opens its
 * spell with count 1; fields is a flat {name, value, …} list.
 * histFold(spell, kind, entry, count, at) → the open record now counts `count` (nil: one more).
 */
export const HISTORY_LUA = `
-- A key's real-time expiry refreshed: at once here; the drain's body script, which runs many
-- decisions in one call, replaces it with one that refreshes each key once, when the call ends.
local function expireLater(key, ms) redis.call('PEXPIRE', key, ms) end
-- A count added to a stats hash's field: at once here; the body script adds each field's once, when the call ends.
local function addLater(key, field, n) redis.call('HINCRBY', key, field, n) end
-- A spell hash's field read, two written, one deleted: at once here; the body script, whose votes
-- of one target read the same open record again and again, serves its reads from what the call has
-- read or written (its writes and deletes still go to Redis at once). Every write or delete of a
-- spell field in a script that the body script pastes goes through these, so its copy cannot go stale.
local function spellGet(spell, field) return redis.call('HGET', spell, field) end
local function spellSet(spell, f1, v1, f2, v2) redis.call('HSET', spell, f1, v1, f2, v2) end
local function spellDel(spell, field) redis.call('HDEL', spell, field) end

local function histOpen(spell, kind, sid, gap, at)
  local cur = spellGet(spell, 's:' .. kind)
  if not cur then return nil end
  local a = string.find(cur, '|', 1, true)
  local b = string.find(cur, '|', a + 1, true)
  if string.sub(cur, 1, a - 1) ~= sid then return nil end
  if at - tonumber(string.sub(cur, b + 1)) > gap then return nil end
  return string.sub(cur, a + 1, b - 1)
end

local function histCount(spell, entry)
  local n = spellGet(spell, 'n:' .. entry)
  if not n then return 1 end
  return tonumber(string.sub(n, 1, string.find(n, '|', 1, true) - 1))
end

local function histFold(spell, kind, entry, count, at)
  if not count then count = histCount(spell, entry) + 1 end
  local cur = spellGet(spell, 's:' .. kind)
  local a = string.find(cur, '|', 1, true)
  spellSet(spell, 'n:' .. entry, count .. '|' .. at, 's:' .. kind, string.sub(cur, 1, a - 1) .. '|' .. entry .. '|' .. at)
end

local function histNew(stream, spell, kind, sid, at, fields, maxlen, retention)
  local args = {'XADD', stream, 'MAXLEN', '~', maxlen, '*', 'kind', kind, 'at', at}
  for i = 1, #fields do args[#args + 1] = fields[i] end
  local entry = redis.call(unpack(args))
  local now = redis.call('TIME')
  redis.call('XTRIM', stream, 'MINID', '~', string.format('%.0f', tonumber(now[1]) * 1000 - retention))
  redis.call('HSET', spell, 's:' .. kind, sid .. '|' .. entry .. '|' .. at, 'n:' .. entry, '1|' .. at)
  -- Only recent records are folded into: the counts of older ones go, oldest first.
  local names = redis.call('HKEYS', spell)
  local counts = {}
  for i = 1, #names do
    if string.sub(names[i], 1, 2) == 'n:' then counts[#counts + 1] = names[i] end
  end
  local keep = ${HISTORY_BOUNDS.spellCounts}
  if #counts > keep then
    table.sort(counts, function(x, y)
      if #x ~= #y then return #x < #y end
      return x < y
    end)
    for i = 1, #counts - keep do redis.call('HDEL', spell, counts[i]) end
  end
  redis.call('PEXPIRE', spell, retention)
  return entry
end

local function histStat(stats, rule, kind, n)
  if n <= 0 then return end
  addLater(stats, rule .. '|' .. kind, n)
  expireLater(stats, '${25 * 3600_000}')
end
`;
