import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './freePort.js';

const run = promisify(execFile);

/**
 * A throwaway 3-master Redis Cluster on loopback, from the `redis-server` and `redis-cli` on PATH
 * (Debian's redis-server package has both): three `--cluster-enabled yes` nodes on free ports, in
 * a private directory, joined by `redis-cli --cluster create`. Every start is a fresh cluster, so
 * starting is idempotent; stop() kills only the processes it started.
 */
export interface LocalCluster {
  /** Seed URLs, comma-separated: the REDIS_URL form mallet takes with MALLET_REDIS_CLUSTER=1. */
  readonly url: string;
  readonly ports: readonly number[];
  stop(): Promise<void>;
}

async function cli(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { timeout: 10_000 });
  return stdout;
}

async function waitFor(what: string, check: () => Promise<boolean>, ms: number): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    try { if (await check()) return; } catch { /* not up yet */ }
    if (Date.now() > until) throw new Error(`redis cluster: ${what} not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function startLocalCluster(masters = 3): Promise<LocalCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'mallet-cluster-'));
  // Cluster bus ports are port + 10000: pick ports whose bus port is valid too.
  const ports: number[] = [];
  while (ports.length < masters) {
    const p = await freePort();
    if (p < 55_000 && !ports.includes(p)) ports.push(p);
  }
  const children: ChildProcess[] = ports.map((port) => spawn('redis-server', [
    '--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes',
    '--cluster-config-file', `nodes-${port}.conf`, '--cluster-node-timeout', '2000',
    '--dir', dir, '--save', '', '--appendonly', 'no',
  ], { stdio: 'ignore' }));
  const stop = async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
    await Promise.all(children.map((c) => (c.exitCode === null && c.signalCode === null ? new Promise((r) => c.once('exit', r)) : undefined)));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (const port of ports) await waitFor(`node ${port}`, async () => (await cli(port, 'ping')).trim() === 'PONG', 10_000);
    await run('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'], { timeout: 30_000 });
    for (const port of ports) {
      await waitFor(`cluster_state:ok on ${port}`, async () => (await cli(port, 'cluster', 'info')).includes('cluster_state:ok'), 20_000);
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { url: ports.map((p) => `redis://127.0.0.1:${p}`).join(','), ports, stop };
}
