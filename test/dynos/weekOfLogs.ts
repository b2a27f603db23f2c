/**
 * A generated week of an app's `heroku logs`, with known leak rates: web.1 and web.2 grow 20 MB/h
 * from 150 MB (quota 512), worker.1 60 MB/h from 200 MB (quota 1024), clock.1 stays at 100 MB and
 * is cycled daily. A dyno over quota logs R14 every sample; a minute later it is restarted (as
 * mallet's stop would make it), and a new instance starts. Deterministic. Lines as `heroku logs`
 * prints them: `2024-11-04T00:00:20.000140+00:00 heroku[web.1]: …`.
 */
export const WEEK_START = Date.parse('2024-11-04T00:00:00Z');
const H = 3_600_000;
const STEP = 20_000;

interface Dyno { name: string; slope: number; base: number; quota: number; offsetMs: number }
const DYNOS: Dyno[] = [
  { name: 'web.1', slope: 20, base: 150, quota: 512, offsetMs: 0 },
  { name: 'web.2', slope: 20, base: 150, quota: 512, offsetMs: 7 * H },
  { name: 'worker.1', slope: 60, base: 200, quota: 1024, offsetMs: 3 * H },
  { name: 'clock.1', slope: 0, base: 100, quota: 512, offsetMs: 11 * H },
];

/** As `heroku logs` prints it: microseconds (a few made up below the ms) and `+00:00`. */
const iso = (t: number) => new Date(t).toISOString().replace('Z', `${String((Math.floor(t / 1000) * 7919) % 1000).padStart(3, '0')}+00:00`);
const uuid = (d: number, life: number) => `${String(d).padStart(8, '0')}-0000-4000-8000-${String(life).padStart(12, '0')}`;

export function weekOfLogs(days = 7): string[] {
  const end = WEEK_START + days * 24 * H;
  const out: Array<[number, string]> = [];
  DYNOS.forEach((d, di) => {
    let life = 0;
    let t = WEEK_START - d.offsetMs;
    while (t < end) {
      const start = t;
      const id = uuid(di, life++);
      if (start >= WEEK_START) {
        out.push([start, `heroku[${d.name}]: Starting process with command \`bundle exec ${d.name.startsWith('web') ? 'puma' : 'sidekiq'}\``]);
        out.push([start + 4000, `heroku[${d.name}]: State changed from starting to up`]);
      }
      let over = 0;
      for (let i = 1; ; i++) {
        t = start + i * STEP;
        if (t >= end) break;
        const age = (t - start) / H;
        if (d.slope === 0 && age >= 24) {
          out.push([t, `heroku[${d.name}]: Cycling`], [t + 2, `heroku[${d.name}]: State changed from up to starting`], [t + 900, `heroku[${d.name}]: Process exited with status 143`]);
          t += 10_000;
          break;
        }
        const noise = ((i * 7919) % 11) - 5;
        const mb = d.base + d.slope * age + noise;
        if (t >= WEEK_START) {
          out.push([t, `heroku[${d.name}]: source=${d.name} dyno=heroku.54241834.${id} sample#memory_total=${mb.toFixed(2)}MB sample#memory_rss=${(mb - 3).toFixed(2)}MB sample#memory_cache=3.00MB sample#memory_swap=0.00MB sample#memory_pgpgin=1000pages sample#memory_pgpgout=900pages sample#memory_quota=${d.quota.toFixed(2)}MB`]);
        }
        if (mb > d.quota) {
          if (t >= WEEK_START) {
            out.push([t + 1, `heroku[${d.name}]: Process running mem=${Math.round(mb)}M(${((mb / d.quota) * 100).toFixed(1)}%)`]);
            out.push([t + 2, `heroku[${d.name}]: Error R14 (Memory quota exceeded)`]);
          }
          if (++over >= 3) {
            out.push([t + 5000, `heroku[${d.name}]: Restarting`], [t + 5002, `heroku[${d.name}]: State changed from up to starting`], [t + 6000, `heroku[${d.name}]: Process exited with status 143`]);
            t += 10_000;
            break;
          }
        }
      }
    }
  });
  out.push([WEEK_START + 50 * H, 'app[api]: Release v42 created by user ops@acme-shop.example']);
  out.sort((a, b) => a[0] - b[0]);
  return out.filter(([t]) => t >= WEEK_START && t < end).map(([t, text]) => `${iso(t)} ${text}`);
}
