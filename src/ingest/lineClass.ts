/**
 * Who wrote a line, from APP-NAME and PROCID alone, as bits so that a consumer that reads only
 * some kinds of lines (the observers: src/observe/Observer.ts) can pass over the rest with one
 * mask test instead of a call per line. The byte parser decides it while it reads the header;
 * producers over strings use lineClassOf.
 *
 * `app[api]` is Heroku's API writing into the app's stream (releases, config changes), not the
 * app's own output, hence a class of its own; `heroku router` is most of a busy drain's lines.
 */
export const LINE_APP = 1;
export const LINE_API = 2;
export const LINE_ROUTER = 4;
/** APP-NAME `heroku`, any PROCID but the router: dyno lifecycle, runtime metrics, logplex notices. */
export const LINE_PLATFORM = 8;
/** Any other APP-NAME (add-ons, a custom sender). */
export const LINE_OTHER = 16;

export function lineClassOf(source: string, process: string): number {
  if (source === 'heroku') return process === 'router' ? LINE_ROUTER : LINE_PLATFORM;
  if (source === 'app') return process === 'api' ? LINE_API : LINE_APP;
  return LINE_OTHER;
}

const H = 0x68, E = 0x65, R = 0x72, O = 0x6f, K = 0x6b, U = 0x75, A = 0x61, P = 0x70, I = 0x69, T = 0x74;

/** lineClassOf over the header's bytes: APP-NAME in buf[app, appEnd), PROCID in buf[proc, procEnd). */
export function lineClassAt(buf: Buffer, app: number, appEnd: number, proc: number, procEnd: number): number {
  const n = appEnd - app;
  if (n === 6 && buf[app] === H && buf[app + 1] === E && buf[app + 2] === R && buf[app + 3] === O && buf[app + 4] === K && buf[app + 5] === U) {
    return procEnd - proc === 6 && buf[proc] === R && buf[proc + 1] === O && buf[proc + 2] === U && buf[proc + 3] === T && buf[proc + 4] === E && buf[proc + 5] === R
      ? LINE_ROUTER : LINE_PLATFORM;
  }
  if (n === 3 && buf[app] === A && buf[app + 1] === P && buf[app + 2] === P) {
    return procEnd - proc === 3 && buf[proc] === A && buf[proc + 1] === P && buf[proc + 2] === I ? LINE_API : LINE_APP;
  }
  return LINE_OTHER;
}
