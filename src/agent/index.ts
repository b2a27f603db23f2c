/** `mallet/agent`: what a Node app embeds to act on mallet's stop keys (SPEC §5 `redis-stop-key`). */
export { watchStopKey, type StopKeyLogger, type StopKeyWatcher, type WatchStopKeyOptions } from './watchStopKey.js';
