import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';

/**
 * Basic auth that checks only the password (SPEC §2: "any user name"). Both sides are hashed
 * first so the comparison is constant-time whatever the lengths.
 */
/** `expected` is the password, or its SHA-256 digest computed once by the caller. */
export function passwordMatches(header: string | undefined, expected: string | Buffer): boolean {
  if (!header?.startsWith('Basic ')) return false;
  let decoded: string;
  try {
    decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
  } catch {
    return false;
  }
  const colon = decoded.indexOf(':');
  if (colon < 0) return false;
  const given = createHash('sha256').update(decoded.slice(colon + 1)).digest();
  const want = typeof expected === 'string' ? createHash('sha256').update(expected).digest() : expected;
  return timingSafeEqual(given, want);
}

/** An onRequest hook answering 401 unless the password matches. */
export function requirePassword(password: string, realm: string) {
  const digest = createHash('sha256').update(password).digest();
  return async (req: FastifyRequest, reply: FastifyReply) => {
    if (!passwordMatches(req.headers.authorization, digest)) {
      await reply.code(401).header('WWW-Authenticate', `Basic realm="${realm}"`).send({ error: 'unauthorized' });
    }
  };
}
