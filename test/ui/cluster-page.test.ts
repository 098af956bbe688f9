// The cluster page and the API reference in real headless Chromium, against a real system:
// three lock nodes and three cache pods with a real redis-server, every node told the others'
// URLs (DSYNC_SYSTEM_URLS). The pages are served by a cache pod (so the lock section shows
// another service's nodes) and by a lock node. What a person would check: the page loads with
// no console error and no request leaving the node, shows the lock leader, shows a lock as
// soon as it is taken (a hostile name as text, not markup), shows a killed node down and the
// new leader, and the key inspector follows a key's MESI line across pods; /docs loads and
// "Try it out" on GET /health gets 200 from the node that served it.
// Run `npm run build` first: the nodes run dist/.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, stopTestApp, type TestNode } from '../http/helpers.js';
import type { ClusterNode } from '../support/cluster.js';
import { launchBrowser, watchedPage, type Page, type RunningBrowser,
  type WatchedPage } from '../support/browser.js';
import { freePort } from '../support/ports.js';
import { startSystem, type RunningSystem } from '../support/system.js';
import { waitFor } from '../support/wait.js';

/** Page updates arrive about once a second; a loaded machine may take several. */
const UPDATE_TIMEOUT_MS = 20_000;

async function call(n: ClusterNode, method: string, path: string, body?: unknown):
  Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await fetch(`${n.url}${path}`, { method,
    headers: { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  return { status: r.status, body: await r.json() as Record<string, unknown> };
}

/** The text of the first element matching `selector`, once `ok` holds for it. */
async function textBecomes(page: Page, selector: string, ok: (t: string) => boolean,
  what: string): Promise<string> {
  return waitFor(what, async () => {
    const loc = page.locator(selector).first();
    if (await loc.count() === 0) return null;
    const t = (await loc.textContent()) ?? '';
    return ok(t) ? t : null;
  }, UPDATE_TIMEOUT_MS, 100);
}

let browser: RunningBrowser;
beforeAll(async () => {
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
});

describe('cluster page in headless Chromium', { timeout: 120_000 }, () => {
  let system: RunningSystem;
  let pod: ClusterNode;
  let watched: WatchedPage;

  beforeAll(async () => {
    system = await startSystem();
    pod = system.cache.nodes[0]!;
    await system.lock.leader(30_000);
    watched = await watchedPage(browser, pod.url);
    await watched.page.goto(`${pod.url}/`);
  });
  afterAll(async () => {
    await system?.stop();
  });

  it('loads without console errors and shows the leader, every node and no queue', async () => {
    const { page, problems } = watched;
    const leader = await system.lock.leader();
    await textBecomes(page, '[data-testid=lock-leader]', (t) => t === leader.id,
      `the page to show the leader ${leader.id}`);
    for (const n of [...system.lock.nodes, ...system.cache.nodes]) {
      await waitFor(`a row for ${n.id}`, () =>
        page.locator(`tr[data-node="${n.id}"][data-up="true"]`).count(), UPDATE_TIMEOUT_MS);
    }
    expect(await page.locator('[data-testid=no-queue]').textContent()).toMatch(/no queue nodes/);
    expect(await page.locator('#served-by').textContent()).toContain(pod.id);
    expect(problems).toEqual([]);
  });

  it('shows a lock once it is taken, with its holder and token, names as text', async () => {
    const { page, problems } = watched;
    const name = '<img src=x onerror="window.__xss=1">';
    const owner = '<b onmouseover="window.__xss=2">mallory</b>';
    const leader = await system.lock.leader();
    const r = await call(leader, 'POST', `/v1/locks/${encodeURIComponent(name)}/acquire`,
      { owner, ttlMs: 60_000 });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const holders = await textBecomes(page, '[data-testid=lock-row] [data-field=holders]',
      (t) => t.includes(owner), 'the page to show the holder');
    expect(holders).toContain(`#${String(r.body.token)}`);
    expect(await page.locator('[data-testid=lock-row] [data-field=name]').first().textContent())
      .toBe(name);
    expect(await page.locator('#locks img, #locks b').count()).toBe(0);
    expect(await page.evaluate(() => (globalThis as { __xss?: number }).__xss)).toBeUndefined();
    expect(problems).toEqual([]);
  });

  it('shows a killed lock leader down and the new leader', async () => {
    const { page, problems } = watched;
    const old = await system.lock.leader();
    await old.crash();
    const survivors = system.lock.nodes.filter((n) => n.running);
    const next = await system.lock.leader(30_000, survivors);
    await waitFor(`${old.id} shown down`, () =>
      page.locator(`#lock-nodes tr[data-node="${old.id}"][data-up="false"]`).count(),
    UPDATE_TIMEOUT_MS);
    await textBecomes(page, '[data-testid=lock-leader]', (t) => t === next.id,
      `the page to show the new leader ${next.id}`);
    expect(await page.locator(`#lock-nodes tr[data-node="${next.id}"] [data-field=role]`)
      .textContent()).toBe('leader');
    expect(problems).toEqual([]);
  });

  it('key inspector: M where written, S on both after a read elsewhere, I after a write', async () => {
    const { page, problems } = watched;
    const [c0, c1, c2] = system.cache.nodes as [ClusterNode, ClusterNode, ClusterNode];
    const key = 'inspect/ünïcode <key>';
    const path = `/v1/cache/${encodeURIComponent(key)}`;
    await page.fill('#inspect-key', key);
    await page.click('#inspect-form button');
    const states = async (): Promise<string> => {
      const out: string[] = [];
      for (const n of [c0, c1, c2]) {
        out.push((await page.locator(`#inspect tr[data-node="${n.id}"] [data-field=state]`)
          .textContent({ timeout: 1000 }).catch(() => '?')) ?? '?');
      }
      return out.join('');
    };
    const shows = (want: string) => waitFor(`the inspector to show ${want}`,
      async () => (await states()) === want, UPDATE_TIMEOUT_MS, 100);
    await shows('III');
    expect((await call(c0, 'PUT', path, { value: 1 })).status).toBe(200);
    await shows('MII');
    expect((await call(c1, 'GET', path)).body).toMatchObject({ value: 1, state: 'S' });
    await shows('SSI');
    expect((await call(c2, 'PUT', path, { value: 2 })).status).toBe(200);
    await shows('IIM');
    expect(await page.locator('#inspect code').textContent()).toBe(key);
    expect(problems).toEqual([]);
  });

  it('is served by a lock node too', async () => {
    const lockNode = system.lock.nodes.find((n) => n.running)!;
    const w = await watchedPage(browser, lockNode.url);
    try {
      await w.page.goto(`${lockNode.url}/`);
      await textBecomes(w.page, '#served-by', (t) => t.includes(lockNode.id), 'served by');
      await waitFor('the cache pods on a lock node\'s page', () =>
        w.page.locator(`#cache-nodes tr[data-up="true"]`).count()
          .then((c) => c === system.cache.nodes.length), UPDATE_TIMEOUT_MS);
      expect(w.problems).toEqual([]);
    } finally {
      await w.page.close();
    }
  });

  it('/docs loads without console errors and "Try it out" on GET /health gets 200 here',
    async () => {
      const w = await watchedPage(browser, pod.url);
      try {
        await w.page.goto(`${pod.url}/docs`);
        const op = w.page.locator('#operations-node-getHealth');
        await op.locator('.opblock-summary').click();
        await op.getByRole('button', { name: 'Try it out' }).click();
        const answered = w.page.waitForResponse((r) => r.url() === `${pod.url}/health`);
        await op.getByRole('button', { name: 'Execute' }).click();
        expect((await answered).status()).toBe(200);
        const live = '#operations-node-getHealth .live-responses-table .response';
        await textBecomes(w.page, `${live} .response-col_status`, (t) => t.trim() === '200',
          'the 200 in the page');
        expect(await w.page.locator(`${live} .response-col_description`).textContent())
          .toContain(`"node": "${pod.id}"`);
        expect(await op.locator('.request-url pre').textContent()).toBe(`${pod.url}/health`);
        expect(w.problems).toEqual([]);
      } finally {
        await w.page.close();
      }
    });
});

// No queue node exists in this build yet: stand-ins answer /health and GET /v1/queues the way
// docs/openapi.yaml says queue nodes will, and the page is served by an in-process node.
describe('queue section, from stand-in queue nodes (no queue service in this build)', () => {
  let node: TestNode;
  let standIn: Server;

  beforeAll(async () => {
    standIn = createServer((req, res) => {
      const body = req.url === '/health'
        ? { status: 'ok', service: 'queue', node: 'queue-0', partitions: [
          { partition: 0, state: 'leader', term: 3, leader: 'queue-0' },
          { partition: 1, state: 'follower', term: 3, leader: null }] }
        : { topics: [{ topic: '<script>orders</script>', partition: 0, leader: 'queue-0',
          groups: { default: { ready: 5, inflight: 2 }, audit: { ready: 1, inflight: 0 } },
          dlq: 3, oldestAgeMs: 4200 }] };
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    });
    await new Promise<void>((r) => standIn.listen(0, '127.0.0.1', () => r()));
    const port = (standIn.address() as AddressInfo).port;
    node = await startTestApp('lock-0', { systemUrls: { queue: [`http://127.0.0.1:${port}`,
      `http://127.0.0.1:${await freePort()}`] } });
  });
  afterAll(async () => {
    await stopTestApp(node);
    await new Promise<void>((r) => standIn.close(() => r()));
  });

  it('shows queue nodes up and down, partitions with and without a leader, topics', async () => {
    const w = await watchedPage(browser, node.url);
    try {
      await w.page.goto(`${node.url}/`);
      await waitFor('the queue rows', () => w.page.locator('#queue tr[data-node]').count()
        .then((c) => c === 2), UPDATE_TIMEOUT_MS);
      expect(await w.page.locator('#queue tr[data-node="queue-0"]').getAttribute('data-up'))
        .toBe('true');
      expect(await w.page.locator('#queue tr[data-up="false"]').count()).toBe(1);
      expect(await w.page.locator('#queue .part').allTextContents()).toEqual(['P0', 'P1']);
      expect(await w.page.locator('#queue .part.no-leader').allTextContents()).toEqual(['P1']);
      const topic = w.page.locator('#queue tbody').last().locator('tr').first();
      expect(await topic.locator('td').allTextContents()).toEqual(['<script>orders</script>',
        '0', 'queue-0', '6', '2', '4.2 s', '3']);
      expect(await w.page.locator('[data-testid=queue-topics] .value').textContent()).toBe('1');
      expect(w.problems).toEqual([]);
    } finally {
      await w.page.close();
    }
  });
});
