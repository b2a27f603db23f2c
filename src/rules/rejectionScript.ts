import { HISTORY_LUA } from '../console/historyLua.js';

/**
 * The `rejected` decision's history record. A rejection is decided in the process (a value from
 * the line has the wrong shape), so it has no round trip of its own: RedisThresholdStore sends
 * this script in the pipeline that carries the body's threshold votes, its one caller.
 */
export const REJECTION_LUA = `--[[
  rejection: records that a matched line was rejected, folded per rule+app and reason.
  KEYS[1] spell     hash: the history's open records of rule+app (target '')
  KEYS[2] seen      HyperLogLog: event ids counted in the current spell of rejections
  KEYS[3] history   stream of firing decisions
  KEYS[4] stats     hash: rule|outcome -> count in the 10-minute bucket of the event time
  ARGV[1] event id  ARGV[2] event time (ms)  ARGV[3] rule  ARGV[4] app  ARGV[5] reason
  ARGV[6] trigger line (cut)  ARGV[7] gap ending a spell (ms)  ARGV[8] history max entries
  ARGV[9] history retention (ms)
  Returns the record's count. A line seen again (a retry) changes nothing.
]]
${HISTORY_LUA}
local t = tonumber(ARGV[2])
local rule = ARGV[3]
local entry = histOpen(KEYS[1], 'rejected', ARGV[5], tonumber(ARGV[7]), t)
if not entry then redis.call('DEL', KEYS[2]) end
if redis.call('PFADD', KEYS[2], ARGV[1]) == 0 then
  if entry then return histCount(KEYS[1], entry) end
  return 0
end
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[7]))
local n = redis.call('PFCOUNT', KEYS[2])
local before = 0
if entry then
  before = histCount(KEYS[1], entry)
  n = math.max(n, before)
  histFold(KEYS[1], 'rejected', entry, n, t)
else
  histNew(KEYS[3], KEYS[1], 'rejected', ARGV[5], t, {'rule', rule, 'app', ARGV[4], 'target', '', 'reason', ARGV[5], 'line', ARGV[6]}, ARGV[8], tonumber(ARGV[9]))
end
histStat(KEYS[4], rule, 'rejected', n - before)
histStat(KEYS[4], rule, 'matches', n - before)
return n
`;

export interface Rejection {
  readonly eventId: string;
  readonly time: number;
  readonly rule: string;
  readonly app: string;
  readonly reason: string;
  readonly recordLine: string;
}
