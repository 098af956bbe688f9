// What a browser gets from every node (src/http/pages.ts): the OpenAPI document with this node
// as its server, the Swagger UI page and the cluster page with a policy that allows nothing
// from elsewhere, their files from the package and from swagger-ui-dist (gzipped, revalidated
// by ETag), the error envelope for any other name, and a package that ships those files.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { request } from 'undici';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OPENAPI_FILE, PAGE_CSP } from '../../src/http/pages.js';
import { ROOT } from '../support/cluster.js';
import { startTestApp, stopTestApp, type TestNode } from './helpers.js';

let node: TestNode;
beforeAll(async () => {
  node = await startTestApp('lock-0');
});
afterAll(() => stopTestApp(node));

async function get(path: string, headers: Record<string, string> = {}) {
  const res = await request(`${node.url}${path}`, { headers });
  const body = Buffer.from(await res.body.arrayBuffer());
  const h = (name: string): string => String(res.headers[name] ?? '');
  return { status: res.statusCode, h, body, text: body.toString('utf8') };
}

describe('GET /openapi.json', () => {
  it('is docs/openapi.yaml as JSON with this node, as the client reached it, as server',
    async () => {
      const r = await get('/openapi.json');
      expect(r.status).toBe(200);
      expect(r.h('content-type')).toMatch(/^application\/json/);
      const doc = JSON.parse(r.text) as Record<string, unknown>;
      const file = parse(readFileSync(`${ROOT}/${OPENAPI_FILE}`, 'utf8')) as
        Record<string, unknown>;
      expect({ ...doc, servers: null }).toEqual({ ...file, servers: null });
      expect(doc.servers).toEqual([{ url: node.url, description: expect.any(String) }]);
      const viaName = JSON.parse((await get('/openapi.json', { host: 'localhost:18080' })).text);
      expect(viaName.servers[0].url).toBe('http://localhost:18080');
      const viaV6 = JSON.parse((await get('/openapi.json', { host: '[::1]:8000' })).text);
      expect(viaV6.servers[0].url).toBe('http://[::1]:8000');
    });

  it.each(['evil.example/path', 'a b', '"><script>', 'x:1:2', 'host:99999', '-bad'])(
    'does not echo the Host header %j: the server is then "/"', async (host) => {
      const doc = JSON.parse((await get('/openapi.json', { host })).text);
      expect(doc.servers).toEqual([{ url: '/', description: expect.any(String) }]);
    });
});

describe('the pages', () => {
  it.each([['/', 'ui/app.js'], ['/docs', 'docs/swagger-ui-bundle.js']])(
    '%s is HTML under a policy of this node only, with local files only', async (path, script) => {
      const r = await get(path);
      expect(r.status).toBe(200);
      expect(r.h('content-type')).toBe('text/html; charset=utf-8');
      expect(r.h('content-security-policy')).toBe(PAGE_CSP);
      expect(r.h('x-content-type-options')).toBe('nosniff');
      expect(r.text).toContain(`src="${script}"`);
      const refs = [...r.text.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1] ?? '');
      expect(refs.length).toBeGreaterThan(2);
      for (const ref of refs) expect(ref, ref).not.toMatch(/^(https?:)?\/\//);
      for (const ref of refs) expect((await get(`/${ref}`)).status, ref).toBe(200);
    });

  it('serves files gzipped when asked, and 304 for a copy the browser already has', async () => {
    const plain = await get('/docs/swagger-ui-bundle.js');
    expect(plain.status).toBe(200);
    expect(plain.h('content-type')).toBe('text/javascript; charset=utf-8');
    expect(plain.h('content-encoding')).toBe('');
    const zipped = await get('/docs/swagger-ui-bundle.js', { 'accept-encoding': 'gzip' });
    expect(zipped.h('content-encoding')).toBe('gzip');
    expect(zipped.body.length).toBeLessThan(plain.body.length / 2);
    expect(gunzipSync(zipped.body).equals(plain.body)).toBe(true);
    const etag = plain.h('etag');
    expect(etag).toMatch(/^"[\w-]+"$/);
    const again = await get('/docs/swagger-ui-bundle.js', { 'if-none-match': etag });
    expect(again.status).toBe(304);
    expect(again.body.length).toBe(0);
    const css = await get('/ui/style.css');
    expect(css.h('content-type')).toBe('text/css; charset=utf-8');
  });

  it.each(['/docs/unknown.js', '/ui/index.html', '/ui/..%2Fpackage.json', '/docs/swagger-ui.js',
    '/docs/__proto__', '/ui/constructor'])('%s is 404 NOT_FOUND in the envelope', async (path) => {
    const r = await get(path);
    expect(r.status).toBe(404);
    const e = JSON.parse(r.text).error;
    expect(e.code).toBe('NOT_FOUND');
    expect(e.message).toMatch(/GET \/docs/);
  });

  it('a wrong method is 405 in the envelope', async () => {
    const res = await request(`${node.url}/docs`, { method: 'POST', body: '{}' });
    expect(res.statusCode).toBe(405);
    expect((await res.body.json() as { error: { code: string } }).error.code)
      .toBe('METHOD_NOT_ALLOWED');
  });
});

describe('the npm package', () => {
  it('ships docs/openapi.yaml and every file of src/ui', () => {
    const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'],
      { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const files = new Set((JSON.parse(out) as Array<{ files: Array<{ path: string }> }>)[0]!
      .files.map((f) => f.path));
    expect(files).toContain(OPENAPI_FILE);
    for (const f of ['index.html', 'app.js', 'style.css', 'favicon.svg', 'docs.html', 'docs.js']) {
      expect(files).toContain(`src/ui/${f}`);
    }
    const pkg = JSON.parse(readFileSync(`${ROOT}/package.json`, 'utf8')) as
      { dependencies: Record<string, string> };
    // Read at run time by every node: production dependencies, not dev ones.
    expect(Object.keys(pkg.dependencies)).toEqual(expect.arrayContaining(['swagger-ui-dist',
      'yaml']));
  });
});
