import Fastify from 'fastify';

/** A webhook receiver on loopback that records what `notify` actions post. */
export async function startNotifyReceiver(): Promise<{ url: string; received: Array<Record<string, unknown>>; close(): Promise<void> }> {
  const app = Fastify();
  const received: Array<Record<string, unknown>> = [];
  app.post('/hook', async (req, reply) => {
    received.push(req.body as Record<string, unknown>);
    return reply.code(200).send('ok');
  });
  const base = await app.listen({ port: 0, host: '127.0.0.1' });
  return { url: `${base}/hook`, received, close: () => app.close() };
}
