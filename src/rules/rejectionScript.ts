import { HISTORY_LUA } from '../console/historyLua.js';

/**
 * The `rejected` decision's history record. A rejection is decided in the process (a value from
 * the line has the wrong shape), so it has no round trip of its own: RedisThresholdStore sends
 * this script in the pipeline that carries the body's threshold votes, its one caller.
 */
/** The rejection script's body, without the history functions it calls. */
export const REJECTION_BODY_LUA = `local t = tonumber(ARGV[1])
local rule = ARGV[2]
local entry = histOpen(KEYS[1], 'rejected', rule, tonumber(ARGV[6]), t)
if not entry then redis.call('DEL', KEYS[2]) end
local ids = {}
for i = 9, #ARGV do ids[#ids + 1] = ARGV[i] end
if redis.call('PFADD', KEYS[2], unpack(ids)) == 0 then
  if entry then return histCount(KEYS[1], entry) end
  return 0
end
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[6]))
local n = redis.call('PFCOUNT', KEYS[2])
local before = 0
if entry then
  before = histCount(KEYS[1], entry)
  n = math.max(n, before)
  histFold(KEYS[1], 'rejected', entry, n, t)
else
  histNew(KEYS[3], KEYS[1], 'rejected', rule, t, {'rule', rule, 'app', ARGV[3], 'target', '', 'reason', ARGV[4], 'line', ARGV[5]}, ARGV[7], tonumber(ARGV[8]))
end
histStat(KEYS[4], rule, 'rejected', n - before)
histStat(KEYS[4], rule, 'matches', n - before)
return n
`;

export const REJECTION_LUA = `--[[
  rejection: records that matched lines of one rule+app were rejected (one call per body and
  rule+app, however many lines), folded into the open record of a run of rejections of that
  rule+app; the record keeps the first line's reason and trigger line.
  KEYS[1] spell     hash: the history's open records of rule+app (target '')
  KEYS[2] seen      HyperLogLog: event ids counted in the current run of rejections
  KEYS[3] history   stream of firing decisions (the app's)
  KEYS[4] stats     hash: rule|outcome -> count in the 10-minute bucket of the event time
  ARGV[1] event time (ms)  ARGV[2] rule  ARGV[3] app  ARGV[4] reason  ARGV[5] trigger line (cut)
  ARGV[6] gap ending a run (ms)  ARGV[7] history max entries  ARGV[8] history retention (ms)
  ARGV[9..] the event ids
  Returns the record's count. Lines seen again (a retry) change nothing.
]]
${HISTORY_LUA}
${REJECTION_BODY_LUA}`;

export interface Rejection {
  readonly eventId: string;
  readonly time: number;
  readonly rule: string;
  readonly app: string;
  readonly reason: string;
  readonly recordLine: string;
}
