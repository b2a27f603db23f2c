import { describe, expect, it } from 'vitest';
import Fastify from 'fastify';
import { requireDigest, secretDigest } from '../../src/basicAuth.js';

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

describe('requireDigest remembers a verified header per digest', () => {
  it('a header that matched is refused once the digest changes (a reload with a new password), and a wrong one never passes', async () => {
    let digest = secretDigest('first');
    const app = Fastify();
    app.addHook('onRequest', requireDigest(() => digest, 'test'));
    app.get('/', async () => 'ok');
    const get = (authorization?: string) => app.inject({ method: 'GET', url: '/', headers: authorization ? { authorization } : {} });
    expect((await get(basic('x', 'first'))).statusCode).toBe(200);
    expect((await get(basic('x', 'first'))).statusCode).toBe(200);
    expect((await get(basic('x', 'firsT'))).statusCode).toBe(401);
    expect((await get()).statusCode).toBe(401);
    digest = secretDigest('second');
    expect((await get(basic('x', 'first'))).statusCode).toBe(401);
    expect((await get(basic('x', 'second'))).statusCode).toBe(200);
    // Same secret, a digest made again (a reload that kept the password): checked afresh, still passes.
    digest = secretDigest('second');
    expect((await get(basic('x', 'second'))).statusCode).toBe(200);
    await app.close();
  });
});
