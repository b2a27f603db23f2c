/**
 * `mallet/agent`: what a Node app embeds to act on mallet's stop keys (SPEC §5 `redis-stop-key`),
 * the counterpart of the Puma plugin in contrib/puma. Same environment (`MALLET_REDIS_URL` else
 * `REDIS_URL`, `MALLET_STOP_KEY_PREFIX`, `MALLET_POLL_INTERVAL`, `DYNO`), same key, same
 * take-once semantics:
 *
 * ```ts
 * import { watchStopKey } from 'mallet/agent';
 * const server = app.listen(process.env.PORT);
 * watchStopKey({ onStop: (reason) => server.close() }); // in-flight requests finish, then exit
 * ```
 */
export { watchStopKey, type StopKeyLogger, type StopKeyWatcher, type WatchStopKeyOptions } from './watchStopKey.js';
