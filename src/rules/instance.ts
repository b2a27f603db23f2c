import type { DrainEvent } from '../ingest/DrainEvent.js';
import type { ResolvedAction } from './Firing.js';
import { isFirDyno } from './shapes.js';

/**
 * Instance-exact stops. Heroku can run two instances of one dyno name at once (preboot during a
 * deploy: the old, bloated `web.1` and the fresh one), and a stop key for `web.1` could be taken
 * by the fresh one. A runtime-metrics line names its instance (`dyno=heroku.<app id>.<uuid>`), so
 * a firing completed by such a line for that dyno writes ` instance=<uuid>` after the stop key's
 * value (a line naming no instance, an R14, is attributed from the dyno lifecycle: see
 * src/dynos/instanceAt.ts); the Puma plugin and mallet/agent compare it with their own `HEROKU_DYNO_ID` (assumed
 * equal to that uuid: see README) and leave a key meant for another instance alone. Without an
 * id on either side, the key is taken as before.
 */
export const INSTANCE_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const DYNO_FIELD = / dyno=heroku\.\d{1,20}\.([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})(?: |$)/;

const SOURCE = 'source=';

/** The instance a line names for `target`: only Heroku's own runtime-metrics line of that dyno. */
export function instanceOf(event: DrainEvent, target: string): string | undefined {
  if (event.source !== 'heroku' || event.process !== target) return undefined;
  const text = event.message;
  // `source=${target} ` compared in place (no string made per call).
  if (!text.startsWith(SOURCE) || !text.startsWith(target, SOURCE.length) || text.charCodeAt(SOURCE.length + target.length) !== 32) return undefined;
  return DYNO_FIELD.exec(text)?.[1];
}

export function withInstance(actions: readonly ResolvedAction[], instance: string | undefined): readonly ResolvedAction[] {
  if (instance === undefined) return actions;
  return actions.map((a) => (a.type === 'redis-stop-key' ? Object.freeze({ ...a, instance }) : a));
}

/** The value a stop key is written with. */
export function stopKeyValue(value: string, instance: string | undefined): string {
  return instance !== undefined && INSTANCE_ID.test(instance) ? `${value} instance=${instance}` : value;
}

/**
 * The instance a memory sample belongs to, for a predict rule's series: the uuid of a Cedar
 * runtime-metrics line (as for stops), or on Fir the dyno name itself, which is new for every
 * instance (`web-12a34b56d-e78f9`; Fir metrics arrive as `source=NAME dyno=NAME …`, see
 * src/ingest/otlp/firEvents.ts). undefined: the line names no instance, and is not predicted on.
 */
export function seriesInstanceOf(event: DrainEvent): string | undefined {
  const uuid = instanceOf(event, event.process);
  if (uuid !== undefined) return uuid;
  const p = event.process;
  if (event.source !== 'heroku' || !isFirDyno(p)) return undefined;
  const head = `source=${p} dyno=${p}`;
  const text = event.message;
  return text.startsWith(head) && (text.length === head.length || text.charCodeAt(head.length) === 32) ? p : undefined;
}
