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

/**
 * What a sample's stack was doing after the route's parse and match, by its nearest frame that
 * has a file outside Node's own (a socket write is charged to whoever wrote: BodyFlush's Redis
 * call, Fastify's 204; a string hash to the encoding that looked it up), then by stage. GC and
 * `(program)` have no stack and stay apart; a Node frame with no caller of ours (an HTTP
 * request's parse, a socket read) goes to Node's HTTP or sockets.
 */
export function stageOf(stack: ReadonlyArray<{ callFrame: { functionName: string; url: string } }>): string {
  const top = stack[0]!.callFrame.functionName;
  if (top === '(garbage collector)') return 'garbage collection';
  if (top === '(program)') return '(program: V8 and libuv outside JS)';
  const file = stack.find((n) => n.callFrame.url !== '' && !n.callFrame.url.startsWith('node:'))?.callFrame.url ?? '';
  const inStack = (re: RegExp) => stack.some((n) => re.test(n.callFrame.url));
  if (/\/node_modules\/(bullmq|msgpackr)\/|\/(dist|src)\/actions\//.test(file)) return 'firings and the worker (BullMQ, actions)';
  if (/\/node_modules\/(redis-parser|ioredis\/built\/(resp|DataHandler))/.test(file) || (/\/node_modules\/ioredis\//.test(file) && inStack(/DataHandler|resp\/decoder/))) return 'Redis replies read (ioredis decoder, callbacks)';
  if (/\/server\/respCall\./.test(file)) return 'Redis call: RESP encoding (respCall)';
  if (/\/server\/bodyFlush\./.test(file) || (/\/node_modules\/(ioredis|denque|standard-as-callback)\//.test(file) && inStack(/\/server\/bodyFlush\./))) return 'Redis call: sending (BodyFlush, ioredis, the socket write)';
  if (/\/node_modules\/(ioredis|denque|standard-as-callback|cluster-key-slot)\//.test(file)) return 'Redis: other commands (ioredis)';
  if (/\/server\/bodyScript\./.test(file)) return 'Redis call: arguments (encodeBody)';
  if (/\/(dist|src)\/(dynos|observe)\//.test(file)) return 'observers: reading lines, their parts';
  if (/\/(dist|src)\/rules\/(match|prefilter|literal|glob|fieldCondition|instance)\./.test(file)) return 'rules: matching';
  if (/\/(dist|src)\/rules\//.test(file)) return 'rules: votes, budget, lifecycle, predict parts, replies';
  if (/\/(dist|src)\/ingest\//.test(file)) return 'ingest: frames, header, timestamp, logfmt';
  if (/\/(dist|src)\/keys\./.test(file)) return 'keys';
  if (/\/(dist|src)\/server\/(pipeline|recentFrames)\./.test(file)) return 'pipeline (stages, counting)';
  if (/\/node_modules\/(prom-client|tdigest|bintrees)\/|\/(dist|src)\/metrics/.test(file)) return 'metrics';
  if (/\/node_modules\/(pino|sonic-boom|thread-stream)/.test(file)) return 'pino';
  if (/\/node_modules\/(fastify|find-my-way|avvio|light-my-request|fast-json-stringify|@fastify)|\/(dist|src)\/(basicAuth|deadline|server\/app|server\/connection)/.test(file)) return 'Fastify, auth, the route (the 204 write included)';
  if (file !== '') return `other: ${file.split('/').slice(-2).join('/')}`;
  const urls = stack.map((n) => n.callFrame.url);
  if (urls.some((u) => /_http/.test(u))) return 'Node: HTTP (parser, response; no caller of ours)';
  if (urls.some((u) => /stream|net/.test(u))) return 'Node: sockets (reads, writes; no caller of ours)';
  return `Node: ${urls.find((u) => u !== '')?.slice(5) ?? top}`;
}

/** The profile's busy time by stage (stageOf), after the first sample inside the pipeline. */
export function summariseByStage(p: CpuProfile, top = 24): string {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const stackOf = (id: number) => {
    const s: Array<CpuProfile['nodes'][number]> = [];
    for (let cur = byId.get(id); cur; cur = byId.get(parent.get(cur.id) ?? -1)) s.push(cur);
    return s;
  };
  let from = p.samples.findIndex((id) => stackOf(id).some((n) => /\/(?:dist|src)\/server\/pipeline\./.test(n.callFrame.url)));
  if (from < 0) from = 0;
  const self = new Map<number, number>();
  for (let i = from; i < p.samples.length; i++) self.set(p.samples[i]!, (self.get(p.samples[i]!) ?? 0) + (p.timeDeltas[i] ?? 0));
  const stages = new Map<string, number>();
  let busy = 0;
  for (const [id, t] of self) {
    const stack = stackOf(id);
    if (stack[0]!.callFrame.functionName === '(idle)') continue;
    busy += t;
    const g = stageOf(stack);
    stages.set(g, (stages.get(g) ?? 0) + t);
  }
  const lines = ['| stage (nearest caller of ours) | share of busy CPU |', '|---|---:|'];
  for (const [g, t] of [...stages].sort((a, b) => b[1] - a[1]).slice(0, top)) lines.push(`| ${g} | ${((100 * t) / busy).toFixed(1)} % |`);
  return lines.join('\n');
}
