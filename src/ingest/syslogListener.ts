import { createServer as createTcpServer, type Server, type Socket } from 'node:net';
import { DEFAULT_CIPHERS, createServer as createTlsServer } from 'node:tls';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { countFrameIssues, type ParsedBody } from './logplexFrames.js';
import { LogplexStream } from './logplexStream.js';
import type { BufferedSyslogMessage, SyslogMessage } from './SyslogMessage.js';
import type { DrainEvent } from './DrainEvent.js';
import { newLineCounts, type LineCounts } from './IngestBatch.js';
import { LINE_APP, LINE_API, LINE_PLATFORM, LINE_ROUTER } from './lineClass.js';

export interface SyslogListenerOptions {
  readonly port: number;
  readonly host?: string;
  /** PEM certificate and key: speak TLS (`syslog+tls://` drains). */
  readonly tls?: { readonly cert: Buffer | string; readonly key: Buffer | string } | undefined;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /**
   * Messages of one drain, in stream order (see MAX_BATCH_LINES). Up to `maxBatchesInFlight`
   * calls per connection are unsettled at once: the next call is made as soon as the previous one
   * has returned its promise, not once that settled, so a caller keeps stream order by issuing its
   * writes before its first await (the pipeline's body script is one ordered Redis command). A
   * rejection closes the connection so logplex buffers and reconnects instead of sending on.
   */
  onBatch(drainToken: string, messages: SyslogMessage[], passedOver?: LineCounts): Promise<void>;
  /**
   * Whether any consumer may read this line (the pipeline's prefilter: header fields and byte
   * tests only; the line is a moving view, valid during the call). Lines it refuses become no
   * message: they are only counted, by kind, in the `passedOver` of their batch. Default: all kept.
   */
  readonly wants?: (line: DrainEvent) => boolean;
  /** Connections that have not shown a known drain token yet, and (apart) connections that have. */
  readonly maxConnections?: number;
  /** Connections that showed the same drain token; beyond it the least recently active one goes. */
  readonly maxPerToken?: number;
  /**
   * Whether a drain token belongs to an app (the rules file's `apps:`). A connection that sends no
   * frame of a known token within `unprovenTimeoutMs` is closed, and when `maxConnections` such
   * connections are open the oldest makes room for a new one. Default: any drain token counts.
   */
  readonly isKnownToken?: (drainToken: string) => boolean;
  readonly unprovenTimeoutMs?: number;
  /** Batch bounds (MAX_BATCH_LINES, MAX_BATCH_BYTES, BATCH_WAIT_MS by default). */
  readonly maxBatchLines?: number;
  readonly maxBatchBytes?: number;
  readonly batchWaitMs?: number;
  /** Batches of one connection handed over and not settled yet (MAX_BATCHES_IN_FLIGHT by default). */
  readonly maxBatchesInFlight?: number;
}

export interface SyslogListener {
  listen(): Promise<{ port: number }>;
  close(): Promise<void>;
}

/**
 * logplex's TLS drain client offers TLS 1.2 (and 1.1) with 128-bit AES suites only, GCM or CBC
 * (heroku-drain-protocol.md §2, logplex_tls.erl). Node's defaults already carry the ECDHE ones;
 * the plain-RSA AES-128 suites are added for clients without ECDHE.
 */
const TLS_CIPHERS = `${DEFAULT_CIPHERS}:AES128-GCM-SHA256:AES128-SHA256:AES128-SHA`;

/** Each drain is one connection; 256 covers a mallet that serves many apps. */
export const DEFAULT_MAX_CONNECTIONS = 256;
/**
 * logplex keeps one connection per drain; a reconnect can overlap the old one for a while. Anyone
 * who knows a drain token can open more, but only this many of them stay.
 */
export const DEFAULT_MAX_PER_TOKEN = 4;

/**
 * logplex sends its first frame as soon as it connects (it connects because it has lines); a
 * connection that has not shown a known drain token by then is not logplex.
 */
const UNPROVEN_TIMEOUT_MS = 10_000;
/** logplex closes an idle drain connection after 240 s plus up to 15 s of fuzz; allow a little more. */
const IDLE_TIMEOUT_MS = 300_000;
/**
 * A batch (one body-script call downstream) is handed over once it holds this many lines or read
 * bytes, or once its first line has waited BATCH_WAIT_MS, whichever comes first; while batches
 * are stored the next one fills, and the socket is paused when MAX_BATCHES_IN_FLIGHT are being
 * stored and the filling one is full.
 */
export const MAX_BATCH_LINES = 4096;
export const MAX_BATCH_BYTES = 1024 * 1024;
/**
 * Batches of one connection being stored at once. Waiting for each batch's round trip (the body
 * script runs for milliseconds) before handing the next left the connection idle half the time;
 * a few in flight keep Redis busy. Each holds up to a batch's worth of lines, so a connection
 * holds at most MAX_BATCHES_IN_FLIGHT + 1 batches.
 */
export const MAX_BATCHES_IN_FLIGHT = 4;
/** How long a line may wait for more to join its batch: the most the batching adds to a trigger. */
export const BATCH_WAIT_MS = 2;
/** How long close() lets connections finish their batch before cutting them. */
const CLOSE_GRACE_MS = 5_000;
/** HOSTNAME of a syslog-drain message: the drain token, `d.` and a UUID. */
const DRAIN_TOKEN = /^d\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A connection's place in the bounds: proven once it sent a frame of a known drain token. */
interface ConnectionState {
  token: string | undefined;
  /** Order of its last read among all connections: the smallest is the least recently active. */
  lastActive: number;
}

/**
 * Who holds the listener's connections. Unproven connections (no frame of a known drain token
 * yet) and proven ones are bounded apart, so neither can crowd out the other:
 * - a new connection always gets in: at `max` unproven ones the oldest unproven gives way, and a
 *   proven connection never does for it (a stranger opening connections cannot cut a drain);
 * - proving a token never fails either: beyond `maxPerToken` connections of that token, or `max`
 *   proven ones in all, the least recently active proven connection gives way (of that token
 *   first). Whoever knows one token holds at most `maxPerToken` connections, and a live drain,
 *   which just sent a frame, is never the one that goes.
 */
class ConnectionBounds {
  // Insertion order is age order: the first one is the oldest.
  readonly #unproven = new Map<Socket, ConnectionState>();
  readonly #byToken = new Map<string, Map<Socket, ConnectionState>>();
  #proven = 0;
  #seq = 0;

  constructor(private readonly max: number, private readonly maxPerToken: number, private readonly log: Logger) {}

  get sockets(): Socket[] {
    return [...this.#unproven.keys(), ...[...this.#byToken.values()].flatMap((m) => [...m.keys()])];
  }

  admit(socket: Socket): ConnectionState {
    if (this.#unproven.size >= this.max) {
      const [oldest] = this.#unproven.keys();
      this.log.debug({ max: this.max }, 'syslog: too many connections without a known drain token; closing the oldest');
      this.#drop(oldest!);
    }
    const state: ConnectionState = { token: undefined, lastActive: ++this.#seq };
    this.#unproven.set(socket, state);
    return state;
  }

  active(state: ConnectionState): void {
    state.lastActive = ++this.#seq;
  }

  prove(socket: Socket, state: ConnectionState, token: string): void {
    if (state.token !== undefined || !this.#unproven.delete(socket)) return;
    let same = this.#byToken.get(token);
    if (same === undefined) this.#byToken.set(token, (same = new Map()));
    if (same.size >= this.maxPerToken) this.#drop(leastActive(same));
    else if (this.#proven >= this.max) this.#drop(leastActive(...this.#byToken.values()));
    state.token = token;
    state.lastActive = ++this.#seq;
    same.set(socket, state);
    this.#proven++;
  }

  /** Forgets a closed connection. */
  remove(socket: Socket, state: ConnectionState): void {
    if (state.token === undefined) {
      this.#unproven.delete(socket);
      return;
    }
    const same = this.#byToken.get(state.token);
    if (same?.delete(socket)) {
      this.#proven--;
      if (same.size === 0) this.#byToken.delete(state.token);
    }
  }

  #drop(socket: Socket): void {
    // 'close' calls remove(); destroy() emits it later, so forget it now for the count.
    const state = this.#unproven.get(socket) ?? [...this.#byToken.values()].find((m) => m.has(socket))?.get(socket);
    if (state) this.remove(socket, state);
    socket.destroy();
  }
}

function leastActive(...groups: Map<Socket, ConnectionState>[]): Socket {
  let best: Socket | undefined;
  let bestSeq = Infinity;
  for (const g of groups) {
    for (const [socket, state] of g) {
      if (state.lastActive < bestSeq) { best = socket; bestSeq = state.lastActive; }
    }
  }
  return best!;
}

/** A syslog drain endpoint: octet-counted RFC 5424 frames over TCP or TLS, one stream per connection. */
export function createSyslogListener(opts: SyslogListenerOptions): SyslogListener {
  const log = opts.logger.child({ component: 'syslog' });
  const inFlight = new Set<Promise<void>>();
  const max = opts.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
  // One logplex drain keeps one connection; the bounds keep an unauthenticated port from holding a
  // partial frame (≤ 65 KiB) for every connection anyone cares to open, and keep whoever fills
  // the port, with or without a drain token, from locking logplex out.
  const bounds = new ConnectionBounds(max, opts.maxPerToken ?? DEFAULT_MAX_PER_TOKEN, log);
  const onSocket = (socket: Socket) => serveConnection(socket, opts, log, bounds, inFlight);
  const server: Server = opts.tls
    ? createTlsServer({ cert: opts.tls.cert, key: opts.tls.key, minVersion: 'TLSv1.2', ciphers: TLS_CIPHERS, handshakeTimeout: UNPROVEN_TIMEOUT_MS }, onSocket)
    : createTcpServer(onSocket);
  // Raw connections (TLS handshakes not done yet) are bounded too, more loosely.
  server.maxConnections = max * 4;
  server.on('tlsClientError', (err: Error) => log.debug({ err: err.message }, 'TLS handshake failed'));

  return {
    listen: () => new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port, opts.host, () => {
        server.off('error', reject);
        const address = server.address();
        resolve({ port: typeof address === 'object' && address ? address.port : opts.port });
      });
    }),
    close: async () => {
      if (server.listening) {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const socket of bounds.sockets) socket.end();
        const cut = setTimeout(() => { for (const socket of bounds.sockets) socket.destroy(); }, CLOSE_GRACE_MS);
        cut.unref();
        await closed;
        clearTimeout(cut);
      }
      // A batch being handed over when its connection closed still finishes before close() returns.
      await Promise.allSettled([...inFlight]);
    },
  };
}

function serveConnection(socket: Socket, opts: SyslogListenerOptions, log: Logger, bounds: ConnectionBounds, inFlight: Set<Promise<void>>): void {
  const state = bounds.admit(socket);
  const isKnown = opts.isKnownToken ?? (() => true);
  const unproven = setTimeout(() => {
    if (state.token !== undefined) return;
    log.debug({ remote: socket.remoteAddress }, 'no frame of a known drain token in time: closing the connection');
    socket.destroy();
  }, opts.unprovenTimeoutMs ?? UNPROVEN_TIMEOUT_MS);
  unproven.unref();
  // Lines no consumer wants, counted per drain token for the batch they fall in (the metrics of
  // lines read); the last token's counts are kept at hand, as one connection carries one drain.
  let passedOver = new Map<string, LineCounts>();
  let skipToken: Buffer | undefined;
  let skipCounts: LineCounts | undefined;
  /** A new map, and the cached token with it: its counts belong to the map handed over. */
  const restartPassedOver = (): void => {
    passedOver = new Map();
    skipToken = undefined;
    skipCounts = undefined;
  };
  const wants = opts.wants;
  const keep = wants === undefined ? undefined : (line: BufferedSyslogMessage): boolean => {
    if (wants(line)) return true;
    // The previous line's token, compared byte for byte by the parser as it read the field (the
    // view expects it): no string made and no second walk for most lines.
    if (skipToken === undefined || line.expectedHostname !== skipToken || !line.hostnameIsExpected) {
      const token = line.hostname;
      skipToken = Buffer.from(token, 'latin1');
      line.expectHostname(skipToken);
      skipCounts = undefined;
      // HOSTNAME picks the app downstream: only a drain-token shape may do that (as byDrainToken).
      if (DRAIN_TOKEN.test(token)) {
        skipCounts = passedOver.get(token);
        if (skipCounts === undefined) passedOver.set(token, (skipCounts = newLineCounts()));
      }
    }
    if (skipCounts === undefined) {
      opts.metrics.framesInvalidTotal.inc({ reason: 'bad-drain-token' });
      return false;
    }
    const c = line.lineClass;
    if ((c & (LINE_ROUTER | LINE_PLATFORM)) !== 0) skipCounts.heroku++;
    else if ((c & (LINE_APP | LINE_API)) !== 0) skipCounts.app++;
    else skipCounts.other++;
    skippedLines++;
    return false;
  };
  /** Lines passed over since the last read was taken. */
  let skippedLines = 0;
  const stream = new LogplexStream({ structuredData: true, keep });
  const maxLines = opts.maxBatchLines ?? MAX_BATCH_LINES;
  const maxBytes = opts.maxBatchBytes ?? MAX_BATCH_BYTES;
  const waitMs = opts.batchWaitMs ?? BATCH_WAIT_MS;
  const maxInFlight = Math.max(1, opts.maxBatchesInFlight ?? MAX_BATCHES_IN_FLIGHT);
  // Whole frames read and not handed over yet, in stream order. Up to maxInFlight batches per
  // connection are stored at once; the socket is read on into the next one meanwhile, and paused
  // once that one is full with maxInFlight in flight, so TCP pushes back on logplex and a
  // connection holds at most maxInFlight + 1 batches.
  let pending: SyslogMessage[] = [];
  let pendingBytes = 0;
  /** Batches handed over and not settled yet. */
  let storing = 0;
  /** The oldest pending line has waited waitMs: hand the batch as soon as a slot is free. */
  let due = false;
  let timer: NodeJS.Timeout | undefined;
  /** No more bytes will come: 'end' (then the stream's tail is read) or 'close'. */
  let ended = false;
  let closed = false;
  /** A batch could not be stored: the connection is closed and nothing more is handed over. */
  let failed = false;

  socket.setTimeout(IDLE_TIMEOUT_MS, () => socket.destroy());
  socket.on('error', (err) => log.debug({ err: err.message }, 'syslog connection error'));

  const full = (): boolean => pending.length >= maxLines || pendingBytes >= maxBytes;
  const held = (): boolean => pending.length > 0 || passedOver.size > 0;

  // Every group's call is made before this returns (none waits for another to settle): the next
  // batch's calls then come after all of this one's, whatever each call awaits.
  const deliver = (messages: SyslogMessage[], skipped: Map<string, LineCounts> | undefined): Promise<void> => {
    const calls: Promise<void>[] = [];
    const groups = byDrainToken(messages, opts.metrics);
    // A token whose lines were all passed over still has them counted.
    if (skipped !== undefined) for (const token of skipped.keys()) if (!groups.has(token)) groups.set(token, []);
    for (const [token, group] of groups) {
      if (state.token === undefined && isKnown(token)) {
        bounds.prove(socket, state, token);
        clearTimeout(unproven);
      }
      try {
        calls.push(opts.onBatch(token, group, skipped?.get(token)));
      } catch (err) {
        calls.push(Promise.reject(err));
      }
    }
    return calls.length === 1 ? calls[0]! : Promise.all(calls).then(() => {});
  };

  const hand = (): void => {
    clearTimeout(timer);
    timer = undefined;
    due = false;
    let messages = pending;
    // The passed-over counts go with the first batch handed after them (they are only counted).
    const skipped = passedOver.size > 0 ? passedOver : undefined;
    if (skipped !== undefined) restartPassedOver();
    if (messages.length > maxLines) {
      pending = messages.slice(maxLines);
      messages = messages.slice(0, maxLines);
      // The bytes left behind are not known per line; a full batch's worth stays counted.
      pendingBytes = Math.min(pendingBytes, maxBytes);
      due = true;
    } else {
      pending = [];
      pendingBytes = 0;
    }
    storing++;
    const delivery = deliver(messages, skipped);
    inFlight.add(delivery);
    delivery.finally(() => inFlight.delete(delivery)).catch(() => {});
    delivery.then(
      () => { storing--; pump(); },
      (err: unknown) => {
        storing--;
        if (failed) return;
        // The batches handed after this one were issued already and may be applied; logplex
        // resends from where the connection broke, and the event ids keep a line that arrives
        // twice from being counted twice.
        failed = true;
        pending = [];
        restartPassedOver();
        log.error({ err: err instanceof Error ? err.message : String(err) }, 'syslog batch not stored; closing the connection so logplex buffers and reconnects');
        socket.destroy();
      },
    );
  };

  /** Called on every change (bytes read, the wait over, a batch stored, end, close). */
  const pump = (): void => {
    if (failed) return;
    while (held() && storing < maxInFlight && (due || full() || ended || closed || stream.broken)) hand();
    if (held() || storing > 0) {
      if (full() || stream.broken) socket.pause();
      else if (!socket.destroyed) socket.resume();
      return;
    }
    if (stream.broken) {
      // Where the next frame starts cannot be known (logplexFrames.ts): reconnecting puts
      // logplex back on a frame boundary.
      log.warn({ remote: socket.remoteAddress }, 'broken frame on a syslog connection: dropping the rest and closing it');
      socket.destroy();
    } else if (ended && !closed) socket.end();
    else if (!socket.destroyed) socket.resume();
  };

  /** Frames read, into the pending batch; its first line starts the wait. */
  const take = (parsed: ParsedBody, bytes: number): void => {
    countFrameIssues(parsed, opts.metrics);
    const skipped = skippedLines;
    skippedLines = 0;
    if (parsed.messages.length === 0 && skipped === 0) return;
    if (pending.length === 0) pending = parsed.messages;
    else for (const m of parsed.messages) pending.push(m);
    pendingBytes += bytes;
    if (timer === undefined && !due) {
      timer = setTimeout(() => { timer = undefined; due = true; pump(); }, waitMs);
    }
  };

  socket.on('data', (chunk: Buffer) => {
    bounds.active(state);
    if (stream.broken || failed) return;
    take(stream.push(chunk), chunk.length);
    pump();
  });
  socket.on('end', () => {
    // A frame cut off by the end is counted (incomplete) and dropped; every whole one is handed.
    take(stream.end(), 0);
    ended = true;
    pump();
  });
  socket.on('close', () => {
    clearTimeout(unproven);
    bounds.remove(socket, state);
    // A reset or a cut connection: the whole frames already read are still handed over.
    closed = true;
    pump();
  });
}

function byDrainToken(messages: SyslogMessage[], metrics: Metrics): Map<string, SyslogMessage[]> {
  const groups = new Map<string, SyslogMessage[]>();
  // One connection carries one drain: the token is compared with the last line's (HOSTNAME
  // strings are interned, so equal tokens are mostly the same string) before any look-up.
  let last: string | undefined;
  let group: SyslogMessage[] | undefined;
  for (const m of messages) {
    const token = m.hostname;
    if (token !== last) {
      last = token;
      group = groups.get(token);
      if (group === undefined) {
        // HOSTNAME picks the app downstream: only a drain-token shape may do that.
        if (DRAIN_TOKEN.test(token)) groups.set(token, (group = []));
      }
    }
    if (group === undefined) {
      metrics.framesInvalidTotal.inc({ reason: 'bad-drain-token' });
      continue;
    }
    group.push(m);
  }
  return groups;
}
