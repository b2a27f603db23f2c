/** One Sidekiq process as its heartbeat hash describes it. */
export interface SidekiqProcess {
  readonly identity: string;
  readonly hostname: string | undefined;
  readonly tag: string | undefined;
  readonly pid: number | undefined;
  /** Threads running a job at the last heartbeat. */
  readonly busy: number;
  /** `quiet` reads "true" one heartbeat after the process picked up TSTP. */
  readonly quiet: boolean;
  /** Epoch seconds of the last heartbeat. */
  readonly beat: number | undefined;
  /** Embedded Sidekiq (7.1+) ignores signals sent through Redis. */
  readonly embedded: boolean;
}

/** What `info` may hold: anything, since any client can write the hash. */
export interface SidekiqInfo {
  readonly hostname: string | undefined;
  readonly tag: string | undefined;
  readonly pid: number | undefined;
  readonly embedded: boolean;
}

/** Beyond this `info` is not a Sidekiq heartbeat; refuse to parse rather than spend memory on it. */
const MAX_INFO_BYTES = 64 * 1024;

/**
 * Parses the `info` JSON defensively: wrong types become undefined, junk becomes undefined
 * (the process is then unmatchable rather than an error for every other process).
 */
export function parseSidekiqInfo(raw: string | null | undefined): SidekiqInfo | undefined {
  if (typeof raw !== 'string' || raw.length === 0 || raw.length > MAX_INFO_BYTES) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const o = value as Record<string, unknown>;
  return {
    hostname: typeof o.hostname === 'string' ? o.hostname : undefined,
    tag: typeof o.tag === 'string' && o.tag !== '' ? o.tag : undefined,
    pid: typeof o.pid === 'number' && Number.isInteger(o.pid) ? o.pid : undefined,
    embedded: o.embedded === true,
  };
}

export function toSidekiqProcess(
  identity: string,
  info: SidekiqInfo,
  busy: string | null | undefined,
  quiet: string | null | undefined,
  beat: string | null | undefined,
): SidekiqProcess {
  const busyN = Number(busy);
  const beatN = Number(beat);
  return {
    identity,
    ...info,
    busy: Number.isFinite(busyN) && busyN >= 0 ? Math.floor(busyN) : 0,
    quiet: quiet === 'true',
    beat: beat != null && Number.isFinite(beatN) ? beatN : undefined,
  };
}
