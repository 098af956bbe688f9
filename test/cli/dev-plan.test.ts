// `dsync dev` tells every node where all the others answer (DSYNC_SYSTEM_URLS), so that the
// cluster page of any node shows the whole system. Checked on the plan, without starting it
// (its ports are the fixed ones of API.md, which other work on this machine may be using).
import { describe, expect, it } from 'vitest';
import { planDevNodes } from '../../src/cli/dev.js';
import { loadNodeConfig, systemUrlsOf } from '../../src/config.js';

describe('dsync dev: system URLs', () => {
  it('gives every node the URLs of every node of every service, valid as config', () => {
    const nodes = planDevNodes({ dir: '/tmp/x', services: ['lock', 'cache'], binPath: 'dsync' },
      '/tmp/x', { DSYNC_REDIS_URL: 'redis://127.0.0.1:6399' });
    expect(nodes).toHaveLength(6);
    const want = 'lock=http://127.0.0.1:8000,http://127.0.0.1:8001,http://127.0.0.1:8002;' +
      'cache=http://127.0.0.1:8200,http://127.0.0.1:8201,http://127.0.0.1:8202';
    for (const n of nodes) {
      expect(n.env.DSYNC_SYSTEM_URLS, n.id).toBe(want);
      const cfg = loadNodeConfig({}, n.env);
      // Its own service's peers add nothing new: the same URLs, once each.
      expect(systemUrlsOf(cfg)[n.service as 'lock' | 'cache']).toHaveLength(3);
    }
  });
});
