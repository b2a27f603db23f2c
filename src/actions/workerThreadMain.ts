import { parentPort, workerData } from 'node:worker_threads';
import { redisKeys } from '../keys.js';
import { createLogger } from '../logger.js';
import { connectRedis, logRedisErrors } from '../redisClient.js';
import { RedisSuspectStore } from '../dynos/SuspectStore.js';
import { startConfiguredWorker } from './startConfiguredWorker.js';
import type { WorkerMetrics } from './worker.js';
import type { FromWorkerThread, ToWorkerThread, WorkerRules, WorkerThreadData } from './workerThread.js';

/** The action worker thread's own side (workerThread.ts starts it): the worker as service.ts would run it in process. */
const port = parentPort!;
const data = workerData as WorkerThreadData;
const { config } = data;
const logger = createLogger(data.log.level, { pretty: data.log.pretty });
const keys = redisKeys(config.keyPrefix, config.queuePrefix);
let rules: WorkerRules = data.rules;

const post = (m: FromWorkerThread) => port.postMessage(m);
const metrics: WorkerMetrics = {
  actionsTotal: { inc: (labels, value = 1) => post({ kind: 'action', type: labels.type, outcome: labels.outcome, value }) },
  triggerLatency: { observe: (seconds) => post({ kind: 'latency', seconds }) },
};

const connections: ReturnType<typeof connectRedis>[] = [];
const connect = (name: string, maxRetriesPerRequest: number | null, enableOfflineQueue = true) => {
  const r = connectRedis(data.redisTarget, { tlsInsecure: config.redisTlsInsecure, cluster: config.redisCluster, maxRetriesPerRequest, enableOfflineQueue, connectionName: `mallet-${name}` });
  logRedisErrors(r, logger, name);
  connections.push(r);
  return r;
};
// As in the service: the Sidekiq step's report fails fast while mallet's Redis is away; the worker waits.
const suspects = new RedisSuspectStore(connect('suspects', 1, false), keys);
const worker = startConfiguredWorker({ config, connection: connect('worker', null), keys, metrics, logger, rules: () => rules, suspects });

port.on('message', (m: ToWorkerThread) => {
  if (m.kind === 'rules') { rules = m.rules; return; }
  void (async () => {
    await worker.close(m.timeoutMs);
    for (const r of connections) {
      if (r.status === 'ready') await r.quit().catch(() => r.disconnect());
      else r.disconnect();
    }
    logger.flush();
    post({ kind: 'closed' });
    port.close();
  })();
});
post({ kind: 'ready' });
