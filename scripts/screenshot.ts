// Takes the README's picture of the cluster page: starts a small real system on free loopback
// ports (3 lock nodes, 3 cache pods, a redis-server), gives it some work (locks held and
// waited on, cache keys written and read from several pods), kills one lock follower so the
// picture shows a node down, and has headless Chromium photograph the page of a cache pod.
//
//   npm run build && npx tsx scripts/screenshot.ts [out.png]   (default docs/img/cluster-page.png)
import { resolve } from 'node:path';
import { launchBrowser, watchedPage } from '../test/support/browser.js';
import { startSystem } from '../test/support/system.js';
import { waitFor } from '../test/support/wait.js';

const OUT = resolve(process.argv[2] ?? 'docs/img/cluster-page.png');

async function call(url: string, method: string, path: string, body?: unknown): Promise<void> {
  const r = await fetch(`${url}${path}`, { method, headers: { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  await r.arrayBuffer();
}

async function work(lockUrl: string, cacheUrls: readonly string[], round: number):
  Promise<void> {
  const acquire = (name: string, owner: string, extra: Record<string, unknown> = {}) =>
    call(lockUrl, 'POST', `/v1/locks/${encodeURIComponent(name)}/acquire`,
      { owner, ttlMs: 120_000, ...extra });
  // Short-lived locks make commits; a few long ones stay on the page.
  await acquire(`jobs/batch-${round % 7}`, `worker-${round % 3}`, { ttlMs: 1000 });
  if (round === 0) {
    await acquire('orders/invoice-7731', 'billing-worker-2');
    await acquire('reports/nightly', 'cron@node-4', { mode: 'shared' });
    await acquire('reports/nightly', 'dashboard-api', { mode: 'shared' });
    await acquire('migrations', 'deploy-41');
    // A waiter: an acquire that blocks; it is not awaited.
    void acquire('migrations', 'deploy-42', { waitMs: 60_000 }).catch(() => undefined);
  }
  for (let i = 0; i < 10 + (round % 5) * 8; i++) {
    const key = `session:${i % 12}`;
    const pod = cacheUrls[i % cacheUrls.length]!;
    await call(pod, i % 5 === 0 ? 'PUT' : 'GET', `/v1/cache/${encodeURIComponent(key)}`,
      i % 5 === 0 ? { value: { name: `user ${i}`, visits: i } } : undefined);
  }
}

const system = await startSystem();
const browser = await launchBrowser();
try {
  const leader = await system.lock.leader(20_000);
  const cacheUrls = system.cache.nodes.map((n) => n.url);
  for (const u of cacheUrls) await call(u, 'PUT', '/v1/cache/seed', { value: 1 });
  const pod = system.cache.nodes[0]!;
  const { page, problems } = await watchedPage(browser, pod.url);
  await page.setViewportSize({ width: 1440, height: 800 });
  await page.goto(`${pod.url}/`);
  // Work goes on while the page samples, so that the sparklines have a shape.
  let busy = true;
  const background = (async () => {
    for (let round = 0; busy; round++) {
      await work(leader.url, cacheUrls, round);
      await new Promise((r) => setTimeout(r, 150 + 250 * (1 + Math.sin(round / 2))));
    }
  })();
  await page.waitForTimeout(25_000);
  const follower = system.lock.nodes.find((n) => n !== leader)!;
  await follower.crash();
  // One key (the background work leaves it alone) written on one pod and read on another:
  // shared by both.
  await call(cacheUrls[0]!, 'PUT', '/v1/cache/user%3A42', { value: { name: 'Ada' } });
  await call(cacheUrls[1]!, 'GET', '/v1/cache/user%3A42');
  await page.fill('#inspect-key', 'user:42');
  await page.click('#inspect-form button');
  await waitFor('the page to show the stopped node', () =>
    page.locator(`#lock-nodes tr[data-node="${follower.id}"][data-up="false"]`).count());
  await waitFor('the key inspector', () => page.locator('#inspect [data-field=state]').count());
  await page.waitForTimeout(1500);
  await page.screenshot({ path: OUT, fullPage: true });
  busy = false;
  await background;
  if (problems.length > 0) throw new Error(`the page had problems:\n${problems.join('\n')}`);
  process.stdout.write(`wrote ${OUT}\n`);
} finally {
  await browser.close();
  await system.stop();
}
