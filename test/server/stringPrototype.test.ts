import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const REPO = fileURLToPath(new URL('../..', import.meta.url));

/**
 * ioredis leaves String.prototype in V8's dictionary mode (src/stringPrototype.ts), which made
 * every string method load in optimised code a generic IC call. In a process of its own (V8's
 * %HasFastProperties needs --allow-natives-syntax): after importing ioredis alone it is slow,
 * after each of the modules that load ioredis for the service it is fast.
 */
function fastAfter(imports: readonly string[]): string {
  const code = `${imports.map((m) => `await import(${JSON.stringify(m)});`).join('')}console.log(%HasFastProperties(String.prototype));`;
  const r = spawnSync(process.execPath, ['--allow-natives-syntax', '--import', 'tsx', '--input-type=module', '-e', code], { cwd: REPO, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return r.stdout.trim();
}

describe('String.prototype after ioredis', () => {
  it('ioredis alone leaves it slow (what the fix is for)', () => {
    expect(fastAfter(['ioredis'])).toBe('false');
  });

  it.each(['./src/redisClient.ts', './src/server/pipeline.ts', './src/server/service.ts'])('fast again after %s', (m) => {
    expect(fastAfter(['ioredis', m])).toBe('true');
  });
});
