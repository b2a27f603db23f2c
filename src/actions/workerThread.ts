import { Worker } from 'node:worker_threads';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import type { CompiledRuleSet } from '../rules/load.js';
import type { Limits } from '../rules/RuleSet.js';
import type { WorkerMetrics } from './worker.js';

/**
 * The action worker in a thread of its own (`mallet serve`'s default placement, README
 * "Scaling"). In the drain's process every round trip of a firing's worker stage (the pickup,
 * the ledger with the lock and slot, the SET) was resumed on the event loop that parses and
 * judges the bodies, so it waited behind their callbacks and their garbage collections; a thread
 * has its own event loop and its own heap. The thread shares nothing with the drain but Redis:
 * the job, its ledger and its lease are there, as they are for a `mallet worker` process.
 */

/** What the worker reads from the rules file: sent on start and after every reload, so one loader serves both. */
export interface WorkerRules {
  readonly limits: Limits;
  readonly apps: ReadonlyMap<string, { readonly redisUrlRef?: string; readonly herokuTokenRef?: string }>;
}

export function workerRulesOf(ruleSet: CompiledRuleSet): WorkerRules {
  const apps = new Map<string, { redisUrlRef?: string; herokuTokenRef?: string }>();
  for (const [name, app] of ruleSet.apps ?? []) {
    apps.set(name, { ...(app.redisUrlRef !== undefined ? { redisUrlRef: app.redisUrlRef } : {}), ...(app.herokuTokenRef !== undefined ? { herokuTokenRef: app.herokuTokenRef } : {}) });
  }
  return { limits: ruleSet.limits, apps };
}

export interface WorkerThreadData {
  readonly config: Config;
  /** The Redis URL or the embedded Redis's socket: the one the service connected to. */
  readonly redisTarget: string;
  readonly rules: WorkerRules;
  readonly log: { readonly level: string; readonly pretty: boolean };
}

/** Parent → thread. */
export type ToWorkerThread =
  | { readonly kind: 'rules'; readonly rules: WorkerRules }
  | { readonly kind: 'close'; readonly timeoutMs: number };

/** Thread → parent: metric changes as they happen (a scrape never waits on the thread), and its state. */
export type FromWorkerThread =
  | { readonly kind: 'action'; readonly type: string; readonly outcome: string; readonly value: number }
  | { readonly kind: 'latency'; readonly seconds: number }
  | { readonly kind: 'ready' }
  | { readonly kind: 'closed' };

export interface WorkerThread {
  setRules(rules: WorkerRules): void;
  /** Lets running jobs finish (the thread's worker.close(timeoutMs)), then the thread ends. */
  close(timeoutMs: number): Promise<void>;
  /**
   * Ends the thread at once, as an out-of-memory death would; it is started again like any thread
   * that died. For the test of that path: nothing else can end a thread from outside.
   */
  terminate(): Promise<void>;
  /**
   * Seconds the thread's event loop was busy since the previous call (its own CPU is not
   * readable from inside the process: `process.cpuUsage()` counts every thread). A thread that
   * died loses what it was busy since that call.
   */
  busySecondsSinceLastRead(): number;
}

/** Past the worker's own close timeout, the thread gets this long to hand back its jobs and end. */
const CLOSE_SLACK_MS = 6_000;
/** A thread that died is started again after this long (its jobs come back through BullMQ's stalled check). */
const RESTART_MS = 1_000;

/**
 * Runs from dist/ as plain JavaScript; from src/ (tests, benches under tsx) the thread has no
 * TypeScript loader of its own, so its entry is loaded through tsx's API.
 */
function threadEntry(): URL {
  const entry = new URL(import.meta.url.endsWith('.ts') ? './workerThreadMain.ts' : './workerThreadMain.js', import.meta.url);
  if (!entry.pathname.endsWith('.ts')) return entry;
  const api = import.meta.resolve('tsx/esm/api');
  const code = `import { tsImport } from ${JSON.stringify(api)}; await tsImport(${JSON.stringify(entry.href)}, ${JSON.stringify(entry.href)});`;
  return new URL(`data:text/javascript,${encodeURIComponent(code)}`);
}

export interface WorkerThreadMetrics extends WorkerMetrics {
  readonly workerThreadRestartsTotal: { inc(): void };
}

export function startWorkerThread(o: { data: WorkerThreadData; metrics: WorkerThreadMetrics; logger: Logger }): Promise<WorkerThread> {
  let rules = o.data.rules;
  let closing: Promise<void> | undefined;
  let thread: Worker;
  let firstReady: ((ok: boolean, err?: Error) => void) | undefined;
  /** What busySecondsSinceLastRead already returned of the current thread's busy time, in ms. */
  let busyReadMs = 0;

  const spawnThread = (): Worker => {
    const t = new Worker(threadEntry(), { workerData: { ...o.data, rules } satisfies WorkerThreadData, name: 'mallet-worker' });
    t.on('message', (m: FromWorkerThread) => {
      switch (m.kind) {
        case 'action': o.metrics.actionsTotal.inc({ type: m.type, outcome: m.outcome }, m.value); return;
        case 'latency': o.metrics.triggerLatency.observe(m.seconds); return;
        case 'ready': firstReady?.(true); firstReady = undefined; return;
        case 'closed': return;
      }
    });
    t.on('error', (err) => {
      o.logger.error({ err: err.message }, 'the action worker thread failed');
      firstReady?.(false, err);
      firstReady = undefined;
    });
    t.on('exit', (code) => {
      if (closing !== undefined || t !== thread) return;
      // In process, an uncaught error would have taken the whole service down; here only the
      // worker stopped, and the drain still stores firings. Its jobs are stalled, not lost.
      o.logger.error({ code }, `the action worker thread stopped: starting it again in ${RESTART_MS / 1000} s`);
      setTimeout(() => {
        if (closing !== undefined) return;
        o.metrics.workerThreadRestartsTotal.inc();
        thread = spawnThread();
        busyReadMs = 0;
      }, RESTART_MS).unref();
    });
    return t;
  };

  return new Promise<WorkerThread>((resolve, reject) => {
    firstReady = (ok, err) => {
      if (!ok) { closing = Promise.resolve(); reject(err ?? new Error('the action worker thread did not start')); return; }
      resolve({
        setRules(next) {
          rules = next;
          if (closing === undefined) thread.postMessage({ kind: 'rules', rules } satisfies ToWorkerThread);
        },
        close(timeoutMs) {
          closing ??= new Promise<void>((done) => {
            const t = thread;
            if (t.threadId === -1) return done();
            const hard = setTimeout(() => { void t.terminate(); }, timeoutMs + CLOSE_SLACK_MS);
            t.once('exit', () => { clearTimeout(hard); done(); });
            t.postMessage({ kind: 'close', timeoutMs } satisfies ToWorkerThread);
          });
          return closing;
        },
        async terminate() { await thread.terminate(); },
        busySecondsSinceLastRead() {
          if (thread.threadId === -1) return 0;
          const active = thread.performance.eventLoopUtilization().active;
          const added = Math.max(0, active - busyReadMs);
          busyReadMs = active;
          return added / 1000;
        },
      });
    };
    thread = spawnThread();
  });
}
