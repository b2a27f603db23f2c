import { describe, expect, it } from 'vitest';
import { firingSummary } from '../../src/actions/notifyText.js';
import type { ActionJobData } from '../../src/actions/ActionJob.js';

const job = (extra: Partial<ActionJobData>): ActionJobData => ({
  id: 'f1', rule: 'web-memory-predict', app: 'my-app', target: 'web.1', processType: 'web', window: '1', firedAt: 1, receivedAt: 1,
  triggerLines: ['2024-11-14T03:40:40+00:00 heroku[web.1]: source=web.1 sample#memory_total=422.00MB'],
  actions: [{ type: 'redis-stop-key', key: 'puma::stop::web.1', value: 'web-memory-predict', ttlMs: 60_000 }],
  dryRun: false, mode: 'execute', submittedAt: 1, submission: 's', fired: '', trigger: null, ...extra,
});

describe('notify summary of a predictive firing', () => {
  it('says the forecast under the headline, escaped like any line-derived text', () => {
    const text = firingSummary(job({ prediction: 'web.1 reaches 512 MB in ~12 min at 41 MB/h' }));
    expect(text.split('\n').slice(0, 2)).toEqual(['mallet: rule *web-memory-predict* fired on *my-app* web.1', 'predicted: web.1 reaches 512 MB in ~12 min at 41 MB/h']);
    expect(firingSummary(job({}))).not.toContain('predicted:');
    expect(firingSummary(job({ prediction: '<!channel> reaches' }))).toContain('predicted: &lt;!channel&gt; reaches');
  });
});
