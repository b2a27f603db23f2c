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
  return async (req: FastifyRequest, reply: FastifyReply) => {
    if (!passwordMatches(req.headers.authorization, digestFor(req))) {
      await reply.code(401).header('WWW-Authenticate', `Basic realm="${realm}"`).send({ error: 'unauthorized' });
    }
  };
}
