import type { Redis } from 'ioredis';
import { encodeScriptCall, isNoScript, ScriptCallCommand, type ScriptText } from './respCall.js';

/**
 * Bodies whose script calls are ready in the same event-loop turn share one socket write: the
 * calls wait until the turn's I/O callbacks have run (setImmediate), or until a bound is reached,
 * and go out in one socket write (one pipeline on a Cluster). On this kind of machine a socket round trip costs as much Node CPU
 * as a whole bare request, and under load several bodies finish parsing in the same turn.
 *
 * Each call stays its own script call (atomic on its own) with its own reply: a call that fails
 * (a script error, a timeout) rejects only its body, whose request is answered 503. Calls are
 * written in the order they were made, and pipelines in the order they were flushed, so the
 * calls of one connection reach Redis in the order they were issued (the syslog path issues its
 * batches in stream order and relies on it).
 *
 * Redis Cluster: a pipeline must stay on one node, so calls are grouped by their key's hash tag
 * (every key of a body is its app's `{app}`, src/keys.ts): one pipeline per slot in a flush, each
 * routed to that slot's node; the order within an app is kept, which is what the order guarantee
 * is about (calls of different slots touch different keys).
 *
 * On one Redis each call is encoded to its RESP bytes as it is queued (respCall.ts: one UTF-8
 * write per argument, no intermediate strings); on a Cluster ioredis encodes it, since its
 * routing reads the command's keys.
 */
export interface FlushBound {
  /** Bodies in one pipeline at most: a larger turn is written as several. */
  readonly maxCalls: number;
  /**
   * Argument bytes (string lengths) in one pipeline at most. A write larger than the socket's
   * buffer is written and read back in pieces: `bench/support/flushCost.ts` measured 32 bodies
   * of 3.4 KB in one 110 KB write at ~80 µs of Node CPU per call against ~45 µs in 64 KB ones.
   */
  readonly maxBytes: number;
}

export const FLUSH_BOUND: FlushBound = { maxCalls: 64, maxBytes: 64 << 10 };

type Call = readonly (string | number)[];
interface Pending { readonly call: Call | ScriptCallCommand; resolve(reply: unknown): void; reject(err: unknown): void }
interface Group { calls: Pending[]; bytes: number }
type Scripted = Record<string, (call: Call) => unknown> & { exec(): Promise<[Error | null, unknown][] | null> };
interface Corkable { readonly writable?: boolean; cork(): void; uncork(): void }
interface DefinedScript { readonly lua: string; readonly sha: string; readonly numberOfKeys: number | null }

/** The group of a key: its hash tag on a Cluster (Redis's own rule: the first `{…}` that is not empty), else one group. */
export function slotGroup(redis: Redis, key: string): string {
  if (!redis.isCluster) return '';
  const open = key.indexOf('{');
  if (open >= 0) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) return key.slice(open + 1, close);
  }
  return key;
}

export class BodyFlush {
  readonly #groups = new Map<string, Group>();
  #scheduled = false;
  /** The script's text and digest when the calls are encoded here (one Redis), else undefined. */
  readonly #script: (ScriptText & { readonly numberOfKeys: number | null }) | undefined;

  /**
   * `command`: a script defined on `redis` with defineCommand (EVALSHA, loaded again on NOSCRIPT).
   * `binary`: its reply is a bulk string read as a Buffer (the command's Buffer form on a Cluster).
   */
  constructor(private readonly redis: Redis, private readonly command: string, private readonly bound: FlushBound = FLUSH_BOUND, private readonly binary = false) {
    const defined = (redis as unknown as { scriptsSet?: Record<string, DefinedScript> }).scriptsSet?.[command];
    // A connection whose script ioredis does not know (a stand-in in tests) is left to ioredis too.
    this.#script = redis.isCluster || defined === undefined ? undefined : { lua: defined.lua, sha: defined.sha, numberOfKeys: defined.numberOfKeys };
  }

  /** Queues one script call for the turn's pipeline; `key` is one of its keys (for the Cluster slot). */
  call(key: string, call: Call): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const name = slotGroup(this.redis, key);
      let group = this.#groups.get(name);
      if (group === undefined) {
        group = { calls: [], bytes: 0 };
        this.#groups.set(name, group);
      }
      const script = this.#script;
      if (script === undefined) {
        group.calls.push({ call, resolve, reject });
        for (const a of call) group.bytes += typeof a === 'string' ? a.length : 8;
      } else {
        const args = script.numberOfKeys === null ? call : [script.numberOfKeys, ...call];
        const { bytes, restAt } = encodeScriptCall(script, args);
        group.calls.push({ call: new ScriptCallCommand(script, bytes, restAt, args.length, this.binary), resolve, reject });
        group.bytes += bytes.length;
      }
      if (group.calls.length >= this.bound.maxCalls || group.bytes >= this.bound.maxBytes) {
        // Full: written now, ahead of the turn's end, and the turn's later calls start a new one.
        this.#groups.delete(name);
        this.#send(group.calls);
      } else if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(this.#flush);
      }
    });
  }

  readonly #flush = (): void => {
    this.#scheduled = false;
    for (const group of this.#groups.values()) this.#send(group.calls);
    this.#groups.clear();
  };

  #write(p: Pending): void {
    const command = p.call as ScriptCallCommand;
    this.redis.sendCommand(command);
    command.promise.then(p.resolve, (err: unknown) => {
      if (!isNoScript(err)) return p.reject(err);
      // Redis lost its scripts (SCRIPT FLUSH, a restart, a failover): sent again, as EVAL, once.
      command.scriptGone();
      const again = command.again();
      this.redis.sendCommand(again);
      again.promise.then(p.resolve, p.reject);
    });
  }

  #send(calls: readonly Pending[]): void {
    if (this.#script !== undefined) {
      // Each command written straight to the connection (its reply queue, timeouts, offline
      // queue and resend after a reconnect are ioredis's), the socket corked meanwhile so the
      // turn's calls leave in one write system call: what an ioredis pipeline would write, without
      // its objects, its promise and its copy of every call's bytes into one buffer.
      const socket = (this.redis as unknown as { stream?: Corkable }).stream;
      const cork = socket !== undefined && socket.writable === true;
      if (cork) socket.cork();
      try {
        for (const p of calls) this.#write(p);
      } finally {
        if (cork) socket.uncork();
      }
      return;
    }
    const pipeline = this.redis.pipeline() as unknown as Scripted;
    const command = this.binary ? `${this.command}Buffer` : this.command;
    for (const p of calls) pipeline[command]!(p.call as Call);
    pipeline.exec().then(
      (results) => {
        for (let i = 0; i < calls.length; i++) {
          const r = results?.[i];
          if (r === undefined) calls[i]!.reject(new Error('no reply to a pipelined body script call'));
          else if (r[0]) calls[i]!.reject(r[0]);
          else calls[i]!.resolve(r[1]);
        }
      },
      (err: unknown) => { for (const p of calls) p.reject(err); },
    );
  }
}
