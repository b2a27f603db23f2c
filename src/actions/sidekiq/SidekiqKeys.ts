/**
 * The keys of Sidekiq's own control protocol (docs/worker-control.md "Sidekiq over Redis").
 * Sidekiq 6 with redis-namespace prefixes every key with `<ns>:`; Sidekiq 7+ has no namespace.
 * An identity is only ever one read from the `processes` set, never built from a log line, so no
 * input can point these keys elsewhere.
 */
import { part } from '../../keys.js';

export interface SidekiqKeys {
  /** Set of live process identities (no TTL: dead members linger until pruned). */
  readonly processes: string;
  /** Hash `info`/`busy`/`beat`/`quiet` of one process, TTL 60 s refreshed every heartbeat. */
  process(identity: string): string;
  /** List the process pops one signal from per heartbeat. */
  signals(identity: string): string;
  /**
   * Hash thread id → JSON `{queue, payload, run_at}` of the jobs a process runs, rewritten every
   * heartbeat: `<id>:work` since 6.4.2 (7, 8), `<id>:workers` before (Debian's 6.4.1).
   */
  work(identity: string): readonly [string, string];
  /**
   * mallet's own record (hash identity → last signal sent) of one sidekiq-stop step, kept beside
   * the processes it names so a retried step knows whom it already signalled.
   */
  stopRecord(jobId: string, stepIndex: number): string;
}

const NAMESPACE = /^[A-Za-z0-9:._-]{1,100}$/;

export function sidekiqKeys(namespace?: string): SidekiqKeys {
  if (namespace !== undefined && !NAMESPACE.test(namespace)) {
    throw new Error(`invalid Sidekiq namespace ${JSON.stringify(namespace.slice(0, 100))}`);
  }
  const ns = namespace ? `${namespace}:` : '';
  return Object.freeze({
    processes: `${ns}processes`,
    process: (identity: string) => `${ns}${identity}`,
    signals: (identity: string) => `${ns}${identity}-signals`,
    work: (identity: string) => [`${ns}${identity}:work`, `${ns}${identity}:workers`] as const,
    stopRecord: (jobId: string, stepIndex: number) => `${ns}mallet:sidekiq-stop:${part(jobId)}:${Math.trunc(stepIndex)}`,
  });
}
