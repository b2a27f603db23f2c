export { sidekiqKeys, type SidekiqKeys } from './SidekiqKeys.js';
export { parseSidekiqInfo, type SidekiqProcess, type SidekiqInfo } from './SidekiqProcess.js';
export { findSidekiqProcesses, readSidekiqProcesses, type ProcessFilter } from './SidekiqRegistry.js';
export { sendSidekiqSignal, type SidekiqSignal } from './SidekiqSignal.js';
export { parseWorkRecord, readSidekiqWork, WORK_LIMITS, type RunningJob, type WorkLimits, type WorkRead } from './SidekiqWork.js';
export { readStopRecord, recordSignal, recordTargets, type StopRecord, type StopRecordState } from './SidekiqStopRecord.js';
