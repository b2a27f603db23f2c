import { parseDuration } from '../rules/duration.js';
import { buildReport, formatReport, type LeakReport } from './report.js';
import type { DynoStore } from './DynoStore.js';
import type { SuspectStore } from './SuspectStore.js';
import { withSuspects } from './suspectReport.js';

export const DEFAULT_SINCE = '7d';

/** `--since 7d`: ms, or undefined when it is no duration. */
export function sinceMs(text: string): number | undefined {
  const ms = parseDuration(text);
  return ms !== undefined && ms > 0 ? ms : undefined;
}

/** With `suspects`, the leak suspects of the app's Sidekiq stops too. */
export async function leakReport(store: DynoStore, app: string, since: number, suspects?: SuspectStore, nowMs = Date.now()): Promise<LeakReport> {
  const report = buildReport(app, await store.read(app), since);
  return suspects ? withSuspects(report, await suspects.read(app), since, nowMs) : report;
}

export function renderReport(r: LeakReport, json: boolean): string {
  return json ? JSON.stringify(r, null, 2) + '\n' : formatReport(r);
}
