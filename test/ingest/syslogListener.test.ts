import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect as tcpConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSyslogListener, type SyslogListener, type SyslogListenerOptions } from '../../src/ingest/syslogListener.js';
import type { SyslogMessage } from '../../src/ingest/SyslogMessage.js';
import { createMetrics, type Metrics } from '../../src/metrics.js';
import { cleanupPrefix, testRedis, uniquePrefix } from '../support/redis.js';
import { fieldsOf, randomChunks, seededRandom, syslogStream } from './sampleBodies.js';

const sample = syslogStream();
let cert: { cert: Buffer; key: Buffer };

beforeAll(() => {
  // A throwaway self-signed certificate, made per run.
  const dir = mkdtempSync(join(tmpdir(), 'mallet-syslog-tls-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=localhost',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
    cert = { cert: readFileSync(join(dir, 'cert.pem')), key: readFileSync(join(dir, 'key.pem')) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

interface Harness {
  listener: SyslogListener;
  port: number;
  metrics: Metrics;
  /** Batches whose call settled, in the order they settled. */
  batches: Array<{ token: string; messages: SyslogMessage[] }>;
  /** Every call, in the order it was made. */
  calls: Array<{ token: string; messages: SyslogMessage[] }>;
  /** Resolves once `count` messages have been handed over. */
  received(count: number): Promise<void>;
}

const open: SyslogListener[] = [];
afterAll(async () => { await Promise.all(open.map((l) => l.close())); });

async function start(tls: boolean, onBatch?: (messages: SyslogMessage[]) => Promise<void>, extra: Partial<SyslogListenerOptions> = {}): Promise<Harness> {
  const metrics = createMetrics(new Registry(), { defaults: false });
  const batches: Harness['batches'] = [];
  const calls: Harness['calls'] = [];
  const waiters: Array<{ count: number; resolve: () => void }> = [];
  const total = () => batches.reduce((n, b) => n + b.messages.length, 0);
  const listener = createSyslogListener({
    port: 0, host: '127.0.0.1', tls: tls ? cert : undefined, logger: pino({ level: 'silent' }), metrics, ...extra,
    onBatch: async (token, messages) => {
      calls.push({ token, messages });
      await onBatch?.(messages);
      batches.push({ token, messages });
      for (const w of waiters) if (total() >= w.count) w.resolve();
    },
  });
  open.push(listener);
  const { port } = await listener.listen();
  return {
    listener, port, metrics, batches, calls,
    received: (count) => new Promise((resolve) => { if (total() >= count) resolve(); else waiters.push({ count, resolve }); }),
  };
}

async function writeInPieces(socket: Socket, pieces: Buffer[]): Promise<void> {
  for (const p of pieces) {
    await new Promise<void>((resolve, reject) => socket.write(p, (err) => (err ? reject(err) : resolve())));
    // Let the pieces arrive as separate reads now and then.
    if (p.length % 3 === 0) await new Promise((r) => setImmediate(r));
  }
}

function dial(port: number, tls: boolean, tlsOptions: Record<string, unknown> = {}): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = tls
      ? tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false, ...tlsOptions }, () => resolve(s))
      : tcpConnect({ port, host: '127.0.0.1' }, () => resolve(s));
    s.once('error', reject);
  });
}

const invalid = async (metrics: Metrics, reason: string) =>
  (await metrics.framesInvalidTotal.get()).values.find((v) => v.labels.reason === reason)?.value ?? 0;

describe.each([false, true])('syslog listener (tls: %s)', (tls) => {
  it('hands over syslog-stream.bin sent in random pieces, grouped by drain token', async () => {
    let slow = 0;
    const h = await start(tls, async () => { if (slow++ % 2) await new Promise((r) => setTimeout(r, 5)); });
    for (const seed of [1, 2, 3]) {
      const before = h.batches.reduce((n, b) => n + b.messages.length, 0);
      const socket = await dial(h.port, tls);
      await writeInPieces(socket, randomChunks(sample.bytes, seededRandom(seed), seed === 1 ? 7 : 600));
      socket.end();
      await h.received(before + sample.expected.length);
    }
    // In the order of the calls: with batches in flight, a slow one settles after the next.
    const all = h.calls.flatMap((b) => b.messages);
    expect(all.map((m) => fieldsOf(m, true))).toEqual([...sample.expected, ...sample.expected, ...sample.expected]);
    expect(new Set(h.calls.map((b) => b.token))).toEqual(new Set([sample.drainToken]));
    expect(await invalid(h.metrics, 'overrun')).toBe(0);
  });

  it('drops HOSTNAMEs that are not drain tokens, and counts them', async () => {
    const h = await start(tls);
    const socket = await dial(h.port, tls);
    const notToken = '<190>1 2024-11-14T03:12:07Z ../../etc app web.1 - - hi\n';
    await writeInPieces(socket, [Buffer.from(`${Buffer.byteLength(notToken)} ${notToken}`), sample.bytes]);
    socket.end();
    await h.received(sample.expected.length);
    expect(await invalid(h.metrics, 'bad-drain-token')).toBe(1);
    expect(h.batches.flatMap((b) => b.messages)).toHaveLength(sample.expected.length);
  });

  it('after a broken frame, hands over what came before it, counts the drop and closes the connection', async () => {
    const h = await start(tls);
    const socket = await dial(h.port, tls);
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => {});
    const first = sample.bytes.subarray(0, 299); // one whole frame
    await writeInPieces(socket, [first, Buffer.from('garbage\n'), sample.bytes]);
    await closed;
    await h.received(1);
    expect(h.batches.flatMap((b) => b.messages).map((m) => fieldsOf(m, true))).toEqual(sample.expected.slice(0, 1));
    expect(await invalid(h.metrics, 'no-length')).toBe(1);
    expect(await invalid(h.metrics, 'rest-dropped')).toBe(1);
  });
});

describe('syslog listener over TLS as logplex dials it', () => {
  it.each(['ECDHE-RSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES128-SHA256', 'AES128-GCM-SHA256', 'AES128-SHA256'])('accepts TLS 1.2 with %s', async (cipher) => {
    const h = await start(true);
    const socket = await dial(h.port, true, { maxVersion: 'TLSv1.2', ciphers: cipher });
    const tlsSocket = socket as import('node:tls').TLSSocket;
    expect(tlsSocket.getProtocol()).toBe('TLSv1.2');
    expect(tlsSocket.getCipher().standardName.includes('AES_128')).toBe(true);
    await writeInPieces(socket, [sample.bytes]);
    socket.end();
    await h.received(sample.expected.length);
    expect(h.batches.flatMap((b) => b.messages)).toHaveLength(sample.expected.length);
  });
});

describe('syslog listener close()', () => {
  it('stops accepting and ends open connections', async () => {
    const h = await start(false);
    const socket = await dial(h.port, false);
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    socket.on('end', () => socket.end());
    await h.listener.close();
    await closed;
    await expect(dial(h.port, false)).rejects.toThrow();
  });

  it('waits for a batch being handed over before it returns', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => { release = r; });
    let entered!: () => void;
    const inBatch = new Promise<void>((r) => { entered = r; });
    const h = await start(false, async () => { entered(); await gate; });
    const socket = await dial(h.port, false);
    socket.on('error', () => {});
    socket.write(sample.bytes);
    await inBatch;
    let closeReturned = false;
    const closing = h.listener.close().then(() => { closeReturned = true; });
    // The connection is gone at once (a reset): only the batch in flight can hold close() now.
    socket.resetAndDestroy();
    await new Promise((r) => setTimeout(r, 200));
    expect(closeReturned).toBe(false);
    expect(h.batches).toHaveLength(0);
    release();
    await closing;
    expect(h.batches.length).toBeGreaterThan(0);
  });
});

describe('syslog listener under a connection flood', () => {
  const closed = (s: Socket) => new Promise<void>((resolve) => { if (s.destroyed) resolve(); else s.once('close', () => resolve()); });
  const ofKnownDrain = (h: Harness) => h.batches.filter((b) => b.token === sample.drainToken).flatMap((b) => b.messages);

  it('closes a connection that shows no known drain token in time', async () => {
    const h = await start(false, undefined, { unprovenTimeoutMs: 200 });
    const idle = await dial(h.port, false);
    idle.on('error', () => {});
    const t0 = Date.now();
    idle.write('9'); // a frame that never ends
    await closed(idle);
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it('at the limit, a connection without a known token makes room for logplex; connections that proved themselves are kept', async () => {
    const h = await start(false, undefined, { maxConnections: 3, unprovenTimeoutMs: 60_000, isKnownToken: (t) => t === sample.drainToken });
    const idle: Socket[] = [];
    // The oldest sends well-formed frames, but for a drain token no app has.
    const stranger = '<190>1 2024-11-14T03:12:07Z d.00000000-0000-4000-8000-000000000000 app web.1 - - hi\n';
    for (const first of [`${Buffer.byteLength(stranger)} ${stranger}`, '9', '9']) {
      const s = await dial(h.port, false);
      s.on('error', () => {});
      await writeInPieces(s, [Buffer.from(first)]);
      idle.push(s);
    }
    // logplex arrives while every slot is taken: the oldest connection without a known token gives
    // way. Once proven, a drain no longer takes one of those slots: the next ones just get in.
    const drains: Socket[] = [];
    for (let i = 0; i < 3; i++) {
      const drain = await dial(h.port, false);
      await writeInPieces(drain, [sample.bytes]);
      await h.received(sample.expected.length * (i + 1) + 1);
      drains.push(drain);
      if (i === 0) await closed(idle[0]!);
      expect(idle.map((s) => s.destroyed)).toEqual([true, false, false]);
    }
    // Newcomers that never show a known token only push each other out: the drains stay.
    const late: Socket[] = [];
    for (let i = 0; i < 5; i++) {
      const s = await dial(h.port, false);
      s.on('error', () => {});
      await writeInPieces(s, [Buffer.from('9')]);
      late.push(s);
    }
    await closed(idle[1]!);
    await closed(idle[2]!);
    await closed(late[0]!);
    expect(drains.map((d) => d.destroyed)).toEqual([false, false, false]);
    expect(ofKnownDrain(h)).toHaveLength(sample.expected.length * 3);
  });

  it('connections of one drain token are bounded: beyond it the least recently active one goes, never the one that just sent', async () => {
    const h = await start(false, undefined, { maxConnections: 50, maxPerToken: 2, isKnownToken: (t) => t === sample.drainToken });
    const frame = sample.bytes.subarray(0, 299); // one whole frame of the known token
    let sent = 0;
    const send = async (s: Socket) => { await writeInPieces(s, [frame]); await h.received(++sent); };
    const connect = async () => { const s = await dial(h.port, false); s.on('error', () => {}); await send(s); return s; };
    const a = await connect();
    const b = await connect();
    await send(a); // a, the older, is now the more recently active
    const c = await connect(); // a third for a bound of 2: b, the idlest, goes
    await closed(b);
    await send(a);
    const d = await connect(); // c is now the idlest
    await closed(c);
    expect([a, b, c, d].map((s) => s.destroyed)).toEqual([false, true, true, false]);
  });
});

describe('syslog listener batches', () => {
  it('hands batches of at most maxBatchLines lines, at most maxBatchesInFlight at once, in stream order, and the whole frames of a reset connection too', async () => {
    let inFlight = 0;
    let most = 0;
    let n = 0;
    const h = await start(false, async () => {
      most = Math.max(most, ++inFlight);
      // Later batches settle first now and then: the calls must still be made in stream order.
      await new Promise((r) => setTimeout(r, n++ % 2 ? 5 : 40));
      inFlight--;
    }, { maxBatchLines: 2, maxBatchesInFlight: 3 });
    const socket = await dial(h.port, false);
    socket.on('error', () => {});
    // Every frame whole, then a frame cut in half: the reset, with batches in flight and more
    // waiting for a slot, must not lose the whole ones.
    await writeInPieces(socket, [sample.bytes, Buffer.from('80 <190>1 2024')]);
    await new Promise((r) => setTimeout(r, 20));
    expect(inFlight).toBeGreaterThan(0);
    socket.resetAndDestroy();
    await h.received(sample.expected.length);
    expect(h.calls.every((b) => b.messages.length <= 2)).toBe(true);
    expect(most).toBe(3);
    expect(h.calls.flatMap((b) => b.messages).map((m) => fieldsOf(m, true))).toEqual(sample.expected);
    // The settling order differed from the call order, so the order above is the listener's.
    expect(h.batches.flatMap((b) => b.messages).map((m) => fieldsOf(m, true))).not.toEqual(sample.expected);
  });

  it('with several batches in flight, writes issued at each call reach Redis in stream order', async () => {
    const redis = testRedis();
    const key = `${uniquePrefix('syslog-order')}:lines`;
    try {
      const lines = Array.from({ length: 200 }, (_, i) => {
        const m = `<190>1 2024-11-14T03:12:07Z ${sample.drainToken} app web.1 - - line ${i}\n`;
        return `${Buffer.byteLength(m)} ${m}`;
      });
      let n = 0;
      let inFlight = 0;
      let most = 0;
      // Like the pipeline: the Redis command is issued before the first await. A counter kept in
      // Redis gives each line the count before it: a line applied out of order gets a wrong one.
      const h = await start(false, async (messages) => {
        most = Math.max(most, ++inFlight);
        const reply = redis.eval(
          "for i, v in ipairs(ARGV) do local n = redis.call('RPUSH', KEYS[1], v) if tostring(n - 1) ~= string.match(v, '%d+$') then redis.call('RPUSH', KEYS[1], 'out of order: ' .. v) end end return 1",
          1, key, ...messages.map((m) => m.message.trim()));
        await new Promise((r) => setTimeout(r, n++ % 3 ? 2 : 15));
        await reply;
        inFlight--;
      }, { maxBatchLines: 7, maxBatchesInFlight: 4 });
      const socket = await dial(h.port, false);
      await writeInPieces(socket, lines.map((l) => Buffer.from(l)));
      socket.end();
      await h.received(lines.length);
      expect(most).toBeGreaterThan(1);
      expect(most).toBeLessThanOrEqual(4);
      expect(await redis.lrange(key, 0, -1)).toEqual(lines.map((_, i) => `line ${i}`));
    } finally {
      await cleanupPrefix(redis, key);
      redis.disconnect();
    }
  });

  it('pauses the socket while maxBatchesInFlight are stored and the filling batch is full', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => { release = r; });
    let calls = 0;
    const h = await start(false, async () => { calls++; await gate; }, { maxBatchLines: 1000, maxBatchesInFlight: 2 });
    const socket = await dial(h.port, false);
    socket.on('error', () => {});
    const frame = sample.bytes.subarray(0, 299);
    // 70 batches' worth, about 21 MB: more than the socket buffers hold once the listener stops reading.
    const count = 70_000;
    socket.write(Buffer.concat(Array.from({ length: count }, () => frame)));
    await new Promise((r) => setTimeout(r, 300));
    expect(calls).toBe(2);
    expect(socket.writableLength).toBeGreaterThan(0);
    release();
    await h.received(count);
    expect(calls).toBeGreaterThanOrEqual(count / 1000);
    expect(socket.writableLength).toBe(0);
    socket.end();
  });

  it('a lone line waits at most batchWaitMs for company', async () => {
    const h = await start(false, undefined, { batchWaitMs: 50 });
    const socket = await dial(h.port, false);
    const t0 = performance.now();
    await writeInPieces(socket, [sample.bytes.subarray(0, 299)]);
    await h.received(1);
    const waited = performance.now() - t0;
    expect(waited).toBeGreaterThanOrEqual(45);
    expect(waited).toBeLessThan(1000);
    socket.end();
  });
});
