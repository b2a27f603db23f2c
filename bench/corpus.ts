/**
 * The benchmark corpus: HTTPS-drain bodies from the samples' generator, made once per size and
 * kept in bench/.corpus (git-ignored). Deterministic (seed 1), so every run measures the same bytes.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');

export interface CorpusBody {
  /** Byte offset of the body in the corpus file. */
  offset: number;
  length: number;
  /** Logplex-Msg-Count to send with it. */
  msgCount: number;
  /** Logplex-Frame-Id to send with it. */
  frameId: string;
}

export interface Corpus {
  file: string;
  index: CorpusBody[];
  meta: Record<string, unknown> & { drainToken?: string; userAgent?: string };
}

export async function ensureCorpus(lines: number): Promise<Corpus> {
  const dir = join(here, '.corpus');
  const file = join(dir, `corpus-${lines}.logplex`);
  if (!existsSync(file) || !existsSync(`${file}.index`) || !existsSync(`${file}.meta.json`)) {
    mkdirSync(dir, { recursive: true });
    execFileSync(process.execPath, [join(root, 'test/fixtures/samples/generate.mjs'), '--lines', String(lines), '--out', relative(root, file)], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  }
  const index = readFileSync(`${file}.index`, 'utf8').split('\n')
    .filter((row) => row && !row.startsWith('#'))
    .map((row) => {
      const [offset, length, msgCount, frameId] = row.split('\t');
      return { offset: Number(offset), length: Number(length), msgCount: Number(msgCount), frameId: frameId ?? '' };
    });
  const meta = JSON.parse(readFileSync(`${file}.meta.json`, 'utf8')) as Corpus['meta'];
  return { file, index, meta };
}
