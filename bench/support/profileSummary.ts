/**
 * A V8 .cpuprofile's self time grouped by owner. Native frames (a socket write, a string
 * encode, a RegExp) have no file: each is charged to the nearest caller that has one, so
 * "ioredis" includes the socket writes its command encoding makes. GC and "(program)" have no
 * caller in the profile and are listed apart.
 */
export interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string }; children?: number[] }>;
  samples: number[];
  timeDeltas: number[];
}

export function owner(url: string): string | undefined {
  if (!url) return undefined;
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + 14).split('/');
    const pkg = rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
    if (['fastify', 'find-my-way', 'avvio', 'light-my-request', 'fast-json-stringify', 'fast-querystring', 'secure-json-parse', 'abstract-logging', 'process-warning', 'toad-cache', 'rfdc'].includes(pkg) || pkg.startsWith('@fastify/')) return 'Fastify';
    if (pkg === 'ioredis' || pkg === 'redis-parser' || pkg === 'cluster-key-slot' || pkg === 'denque' || pkg === 'standard-as-callback' || pkg === '@ioredis/commands') return 'ioredis (command encoding, socket writes, replies)';
    if (pkg === 'bullmq' || pkg === 'msgpackr') return 'BullMQ (firings, the worker)';
    if (pkg === 'pino' || pkg.startsWith('pino-') || pkg === 'sonic-boom' || pkg === 'thread-stream') return 'pino';
    if (pkg === 'prom-client' || pkg === 'tdigest' || pkg === 'bintrees') return 'prom-client';
    if (pkg === 're2') return 'mallet: rules (re2)';
    return `other: ${pkg}`;
  }
  const m = url.match(/\/(?:dist|src)\/(.+)\.(?:js|ts)$/);
  if (m) {
    const f = m[1]!;
    if (f.startsWith('ingest/')) return 'mallet: ingest (frames, header, timestamp, logfmt)';
    if (f.startsWith('rules/')) return 'mallet: rules (match, votes)';
    if (f.startsWith('dynos/') || f.startsWith('observe/')) return 'mallet: observers (dynos)';
    if (f.startsWith('server/pipeline') || f.startsWith('server/recentFrames')) return 'mallet: pipeline, frame de-dup';
    if (f.startsWith('actions/')) return 'mallet: actions (queue, worker)';
    return 'mallet: other (keys, metrics, auth, routes)';
  }
  if (url.startsWith('node:')) {
    if (/_http|http/.test(url)) return "Node: HTTP (parser, response)";
    if (/net|stream|tls/.test(url)) return 'Node: sockets and streams';
    return `Node: ${url.slice(5).split('/')[1] ?? url.slice(5)}`;
  }
  return `other: ${url.split('/').slice(-2).join('/')}`;
}

export function groupProfile(p: CpuProfile): { busyUs: number; groups: Array<[string, number]> } {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  // Start-up (module loading, the rules file, connecting) is not drain work: samples count from
  // the first one inside the drain pipeline.
  const inPipeline = (id: number): boolean => {
    for (let cur = byId.get(id); cur; cur = byId.get(parent.get(cur.id) ?? -1)) if (/\/(?:dist|src)\/server\/pipeline\./.test(cur.callFrame.url)) return true;
    return false;
  };
  let from = p.samples.findIndex(inPipeline);
  if (from < 0) from = 0;
  const self = new Map<number, number>();
  for (let i = from; i < p.samples.length; i++) self.set(p.samples[i]!, (self.get(p.samples[i]!) ?? 0) + (p.timeDeltas[i] ?? 0));
  const groups = new Map<string, number>();
  let busyUs = 0;
  for (const [id, t] of self) {
    const node = byId.get(id)!;
    const fn = node.callFrame.functionName;
    if (fn === '(idle)') continue;
    busyUs += t;
    let g: string | undefined;
    if (fn === '(garbage collector)') g = 'garbage collection';
    else if (fn === '(program)') g = '(program: V8 and libuv outside JS)';
    else {
      for (let cur: typeof node | undefined = node; cur && !g; cur = byId.get(parent.get(cur.id) ?? -1)) g = owner(cur.callFrame.url);
      g ??= `native: ${fn}`;
    }
    groups.set(g, (groups.get(g) ?? 0) + t);
  }
  return { busyUs, groups: [...groups].sort((a, b) => b[1] - a[1]) };
}

export function summariseProfile(p: CpuProfile, top = 20): string {
  const { busyUs, groups } = groupProfile(p);
  const lines = ['| who | share of busy CPU |', '|---|---:|'];
  for (const [g, t] of groups.slice(0, top)) lines.push(`| ${g} | ${((100 * t) / busyUs).toFixed(1)} % |`);
  return lines.join('\n');
}
