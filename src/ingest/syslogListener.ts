import { createServer as createTcpServer, type Server, type Socket } from 'node:net';
import { DEFAULT_CIPHERS, createServer as createTlsServer } from 'node:tls';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { countFrameIssues, type ParsedBody } from './logplexFrames.js';
import { LogplexStream } from './logplexStream.js';
import type { SyslogMessage } from './SyslogMessage.js';

export interface SyslogListenerOptions {
  readonly port: number;
  readonly host?: string;
  /** PEM certificate and key: speak TLS (`syslog+tls://` drains). */
  readonly tls?: { readonly cert: Buffer | string; readonly key: Buffer | string } | undefined;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /**
   * Messages of one drain, in stream order. The connection is paused until it settles; a
   * rejection closes the connection so logplex buffers and reconnects instead of sending on.
   */
  onBatch(drainToken: string, messages: SyslogMessage[]): Promise<void>;
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
/** Bytes read into the next batch while one is stored, before the socket is paused. */
const MAX_PENDING_BYTES = 1024 * 1024;
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
  const stream = new LogplexStream({ structuredData: true });
  // One batch per connection is handed over at a time, in stream order. While it is stored the
  // socket keeps being read into the next batch, up to MAX_PENDING_BYTES; past that it is paused,
  // so TCP pushes back on logplex. Reading on instead of pausing at every batch lets batches grow
  // with the load (one Redis round trip per batch instead of one per 64 KiB read).
  let busy = false;
  let ended = false;
  let pending: ParsedBody | undefined;
  let pendingBytes = 0;

  socket.setTimeout(IDLE_TIMEOUT_MS, () => socket.destroy());
  socket.on('error', (err) => log.debug({ err: err.message }, 'syslog connection error'));
  socket.on('close', () => { clearTimeout(unproven); bounds.remove(socket, state); });

  const deliver = async (parsed: ParsedBody): Promise<void> => {
    countFrameIssues(parsed, opts.metrics);
    if (parsed.messages.length === 0) return;
    for (const [token, messages] of byDrainToken(parsed.messages, opts.metrics)) {
      if (state.token === undefined && isKnown(token)) {
        bounds.prove(socket, state, token);
        clearTimeout(unproven);
      }
      await opts.onBatch(token, messages);
    }
  };

  /** What to do once nothing is in flight and nothing is pending. */
  const settle = (): void => {
    if (stream.broken) {
      // Where the next frame starts cannot be known (logplexFrames.ts): reconnecting puts
      // logplex back on a frame boundary.
      log.warn({ remote: socket.remoteAddress }, 'broken frame on a syslog connection: dropping the rest and closing it');
      socket.destroy();
    } else if (ended) {
      const last = stream.end();
      if (last.messages.length > 0 || last.errors.length > 0 || last.warnings.length > 0) {
        ended = false; // end() is done; the next settle closes the connection.
        hand(last, () => socket.end());
      } else socket.end();
    } else if (!socket.destroyed) socket.resume();
  };

  const hand = (parsed: ParsedBody, then: () => void): void => {
    if (parsed.messages.length === 0) {
      void deliver(parsed);
      then();
      return;
    }
    busy = true;
    const delivery = deliver(parsed);
    inFlight.add(delivery);
    delivery.finally(() => inFlight.delete(delivery)).catch(() => {});
    delivery.then(
      () => {
        busy = false;
        const next = pending;
        pending = undefined;
        pendingBytes = 0;
        if (next !== undefined) hand(next, settleUnlessBusy);
        else then();
      },
      (err: unknown) => {
        busy = false;
        pending = undefined;
        log.error({ err: err instanceof Error ? err.message : String(err) }, 'syslog batch not stored; closing the connection so logplex buffers and reconnects');
        socket.destroy();
      },
    );
  };
  const settleUnlessBusy = (): void => { if (!busy) settle(); };

  socket.on('data', (chunk: Buffer) => {
    bounds.active(state);
    if (stream.broken) return;
    const parsed = stream.push(chunk);
    if (busy) {
      if (pending === undefined) pending = parsed;
      else {
        for (const m of parsed.messages) pending.messages.push(m);
        for (const e of parsed.errors) pending.errors.push(e);
        for (const w of parsed.warnings) pending.warnings.push(w);
      }
      pendingBytes += chunk.length;
      if (pendingBytes >= MAX_PENDING_BYTES || stream.broken) socket.pause();
      return;
    }
    hand(parsed, settleUnlessBusy);
    if (busy && stream.broken) socket.pause();
  });
  socket.on('end', () => {
    ended = true;
    if (!busy) settle();
  });
}

function byDrainToken(messages: SyslogMessage[], metrics: Metrics): Map<string, SyslogMessage[]> {
  const groups = new Map<string, SyslogMessage[]>();
  for (const m of messages) {
    const token = m.hostname;
    let group = groups.get(token);
    if (group === undefined) {
      // HOSTNAME picks the app downstream: only a drain-token shape may do that.
      if (!DRAIN_TOKEN.test(token)) {
        metrics.framesInvalidTotal.inc({ reason: 'bad-drain-token' });
        continue;
      }
      group = [];
      groups.set(token, group);
    }
    group.push(m);
  }
  return groups;
}
