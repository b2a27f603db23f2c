import type { Executor } from '../Executor.js';
import { herokuRestartExecutor, type HerokuRestartOptions } from './herokuRestart.js';
import { notifyExecutor } from './notify.js';
import { stopKeyExecutor } from './stopKey.js';

/** The executors mallet ships with; `sidekiq-stop` is added by the caller (see startActionWorker). */
export function defaultExecutors(opts: HerokuRestartOptions): Executor[] {
  return [stopKeyExecutor, herokuRestartExecutor(opts), notifyExecutor] as Executor[];
}
