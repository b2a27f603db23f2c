/**
 * A lightweight subscriber of the trigger-latency probes, in its own process so that its clock is
 * not held up by the GC or the event loop of the bench or of mallet: subscribes to the wake
 * channels of the probes' stop keys (the PUBLISH that follows the key's SET in the same round trip)
 * and prints one JSON line per message with the wall-clock time it arrived.
 *
 *   node --import tsx bench/support/wakeWatcher.ts REDIS_URL CHANNEL_PATTERN
 */
import { Redis } from 'ioredis';

const [url, pattern] = process.argv.slice(2);
const sub = new Redis(url!, { lazyConnect: true, connectionName: 'mallet-bench-wake-watcher' });
await sub.connect();
sub.on('pmessage', (_pattern: string, channel: string) => {
  const at = performance.timeOrigin + performance.now();
  process.stdout.write(`${JSON.stringify({ channel, at })}\n`);
});
await sub.psubscribe(pattern!);
process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
process.once('SIGTERM', () => { sub.disconnect(); process.exit(0); });
