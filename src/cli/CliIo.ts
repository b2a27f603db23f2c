import type { Writable } from 'node:stream';

/** What a CLI command may touch, injected so tests run commands in-process. */
export interface CliIo {
  readonly stdout: Writable;
  readonly stderr: Writable;
  readonly env: Record<string, string | undefined>;
  readonly cwd: string;
}
