import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';

/**
 * Basic auth that checks only the password (SPEC §2: "any user name"). Both sides are hashed
 * first so the comparison is constant-time whatever the lengths.
 */
/** A secret's SHA-256 digest: compute a fixed secret's once, then compare with `secretMatches`. */
export function secretDigest(secret: string): Buffer {
  return createHash('sha256').update(secret).digest();
}

/** Constant-time whatever the lengths: digests of equal size are compared, never the secrets. */
export function secretMatches(given: string, expectedDigest: Buffer): boolean {
  return timingSafeEqual(secretDigest(given), expectedDigest);
}

/** `expectedDigest` is the password's `secretDigest`. */
export function passwordMatches(header: string | undefined, expectedDigest: Buffer): boolean {
  if (!header?.startsWith('Basic ')) return false;
  let decoded: string;
  try {
    decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
  } catch {
    return false;
  }
  const colon = decoded.indexOf(':');
  if (colon < 0) return false;
  return secretMatches(decoded.slice(colon + 1), expectedDigest);
}

/** An onRequest hook answering 401 unless the password matches. */
export function requirePassword(password: string, realm: string) {
  const digest = secretDigest(password);
  return requireDigest(() => digest, realm);
}

/**
 * The same where the password depends on the request (the drain: an app may have its own), given
 * as the digest to compare with, so the comparison stays constant-time whichever applies.
 */
export function requireDigest(digestFor: (req: FastifyRequest) => Buffer, realm: string) {
  const verified = new VerifiedHeaders();
  const challenge = `Basic realm="${realm}"`;
  // A callback hook, not an async one: Fastify then runs the next step in the same tick, with no
  // promise and no microtask per request (a drain's every body passes here). A refusal answers
  // and never calls `done`, which ends the request's hooks as the async form's send did.
  return (req: FastifyRequest, reply: FastifyReply, done: () => void): void => {
    const header = req.headers.authorization;
    const digest = digestFor(req);
    if (header !== undefined && verified.has(header, digest)) {
      done();
      return;
    }
    if (passwordMatches(header, digest)) {
      verified.add(header!, digest);
      done();
      return;
    }
    void reply.code(401).header('WWW-Authenticate', challenge).send({ error: 'unauthorized' });
  };
}

/** Headers kept at once: a drain's few senders send the same header on every request. */
const MAX_VERIFIED = 64;

/**
 * Authorization headers that matched, and the digest each matched (by identity: a reload that
 * changes a password makes a new digest, so the old header is checked afresh). A drain sends
 * the same header with every body, so the decode and the hash are done once per header rather
 * than per request. Only headers that matched are kept, and a lookup hashes the whole header
 * before comparing to a key whose hash is equal: a wrong guess takes no longer the nearer it is
 * to a kept one, so the comparison stays as constant-time as the hashed one.
 */
class VerifiedHeaders {
  readonly #byHeader = new Map<string, Buffer>();

  has(header: string, digest: Buffer): boolean {
    return this.#byHeader.get(header) === digest;
  }

  add(header: string, digest: Buffer): void {
    if (this.#byHeader.size >= MAX_VERIFIED) this.#byHeader.clear();
    this.#byHeader.set(header, digest);
  }
}
