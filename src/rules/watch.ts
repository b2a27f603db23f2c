import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import type { Logger } from 'pino';
import type { CompiledRuleSet } from './CompiledRule.js';
import { formatRuleError, loadRules } from './load.js';

export interface WatchRulesOptions {
  readonly path: string;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly logger: Logger;
  readonly onReload: (ruleSet: CompiledRuleSet) => void;
  /** A reload refused: every error as `file:line:col: message` (the status page shows them). */
  readonly onRefused?: (errors: readonly string[]) => void;
  /** Quiet time after the last change before reloading (editors write in several steps). */
  readonly debounceMs?: number;
}

/**
 * Hot reload of the rules file. The directory is watched, not the file: editors and
 * `kubectl cp`-style tools replace the file (rename over it), which ends a watch on the old inode.
 * A file that fails validation is refused with every error logged; the last good rules stay.
 * The caller wires SIGHUP to `reload()`.
 */
export function watchRules(opts: WatchRulesOptions): { close(): void; reload(): Promise<boolean> } {
  const path = resolve(opts.path);
  const name = basename(path);
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<boolean> | undefined;
  let again = false;

  const reloadOnce = async (): Promise<boolean> => {
    const r = await loadRules(path, opts.env);
    if (!r.ok) {
      for (const e of r.errors) opts.logger.error({ rulesFile: path }, `rules reload refused: ${formatRuleError(e)}`);
      opts.logger.warn({ rulesFile: path, errors: r.errors.length }, 'rules file invalid: keeping the last good rules');
      opts.onRefused?.(r.errors.map(formatRuleError));
      return false;
    }
    for (const w of r.warnings) opts.logger.warn({ rulesFile: path }, `rules warning: ${formatRuleError(w)}`);
    opts.onReload(r.ruleSet);
    opts.logger.info({ rulesFile: path, rules: r.ruleSet.rules.length }, 'rules reloaded');
    return true;
  };

  // One reload at a time; a change during a reload triggers one more afterwards.
  const reload = (): Promise<boolean> => {
    if (running) {
      again = true;
      return running;
    }
    running = reloadOnce().finally(() => {
      running = undefined;
      if (again) {
        again = false;
        void reload();
      }
    });
    return running;
  };

  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(dirname(path), (_event, file) => {
      if (file !== null && file !== name) return;
      clearTimeout(timer);
      timer = setTimeout(() => void reload(), opts.debounceMs ?? 200);
    });
    watcher.on('error', (err) => opts.logger.warn({ err: err.message }, 'rules watch stopped; SIGHUP still reloads'));
  } catch (err) {
    opts.logger.warn({ err: (err as Error).message }, 'cannot watch the rules directory; SIGHUP still reloads');
  }

  return {
    close() {
      clearTimeout(timer);
      watcher?.close();
    },
    reload,
  };
}
