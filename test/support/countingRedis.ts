import { Redis } from 'ioredis';
import { testRedisUrl } from './redis.js';

/**
 * A drain connection as the service opens it (fails fast while Redis is down), recording the
 * name of each command it sends; `ignore` leaves out housekeeping (ioredis's INFO on connect,
 * the apps registry's SADD) so a test counts the body's own round trips.
 */
export function countingRedis(ignore: readonly string[] = ['info']): { redis: Redis; commands: () => string[]; reset: () => void } {
  const redis = new Redis(testRedisUrl(), { maxRetriesPerRequest: 1, enableOfflineQueue: false });
  let sent: string[] = [];
  const send = redis.sendCommand.bind(redis);
  redis.sendCommand = ((command: { name: string }, ...rest: unknown[]) => {
    sent.push(command.name);
    return (send as (...a: unknown[]) => unknown)(command, ...rest);
  }) as Redis['sendCommand'];
  return { redis, commands: () => sent.filter((c) => !ignore.includes(c)), reset: () => { sent = []; } };
}
