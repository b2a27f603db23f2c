/**
 * The drain benchmark's baseline in its own process (so its CPU can be read from /proc): a bare
 * Fastify route that reads the same logplex body and answers 204. Prints its URL.
 */
import Fastify from 'fastify';

const bare = Fastify();
bare.addContentTypeParser('application/logplex-1', { parseAs: 'buffer', bodyLimit: 1024 * 1024 }, (_r, b, done) => done(null, b));
bare.post('/drains/:app', async (_req, reply) => reply.code(204).send());
console.log(await bare.listen({ port: 0, host: '127.0.0.1' }));
process.once('SIGTERM', () => { void bare.close().then(() => process.exit(0)); });
