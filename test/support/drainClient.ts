import { readFileSync } from 'node:fs';
import { samplePath } from './samples.js';

/** A sample body with the headers logplex sent with it (from its sidecar JSON). */
export function sampleBody(name: string): { body: Buffer; headers: Record<string, string>; expected: Array<Record<string, unknown>> } {
  const body = readFileSync(samplePath('bodies', `${name}.logplex`));
  const side = JSON.parse(readFileSync(samplePath('bodies', `${name}.json`), 'utf8'));
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(side.headers ?? {})) {
    if (k.toLowerCase() !== 'content-length') headers[k] = String(v);
  }
  return { body, headers, expected: side.expected };
}

/** Frames messages as logplex does: `LEN SP MSG`, LEN in bytes. */
export function frame(...messages: string[]): Buffer {
  return Buffer.concat(messages.map((m) => {
    const b = Buffer.from(m, 'utf8');
    return Buffer.concat([Buffer.from(`${b.length} `), b]);
  }));
}

/** An HTTPS-drain message line (`<PRI>1 TS host APP PROC - TEXT\n`). */
export function drainLine(source: string, proc: string, text: string, ts = new Date().toISOString().replace('Z', '+00:00')): string {
  const pri = source === 'app' ? 190 : 134;
  return `<${pri}>1 ${ts} host ${source} ${proc} - ${text}\n`;
}

export function basic(password: string, user = 'mallet'): string {
  return 'Basic ' + Buffer.from(`${user}:${password}`).toString('base64');
}

export async function postDrain(url: string, app: string, body: Buffer, opts: { password: string; headers?: Record<string, string>; contentType?: string }): Promise<Response> {
  return fetch(`${url}/drains/${app}`, {
    method: 'POST',
    headers: {
      'Content-Type': opts.contentType ?? 'application/logplex-1',
      Authorization: basic(opts.password),
      ...opts.headers,
    },
    body: new Uint8Array(body),
  });
}
