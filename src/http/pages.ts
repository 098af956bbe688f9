// What a browser gets from every node: the live cluster page (`GET /` and its assets under
// `/ui/`), the API reference (`GET /docs`, Swagger UI with its assets under `/docs/`) and the
// contract itself (`GET /openapi.json`). Everything is served from the installed package:
// docs/openapi.yaml and src/ui/ next to dist/, swagger-ui-dist from node_modules. Nothing
// comes from a CDN, so the pages work in an air-gapped cluster.
//
// The assets are a fixed list of files, each read once and kept in memory (gzipped too when
// that saves bytes); any other name under /ui/ or /docs/ is 404 in the error envelope. The
// HTML pages carry a Content-Security-Policy that allows scripts, styles and requests from
// this node only: the page builds its DOM with textContent, and the policy is the second line
// of defence should a lock name or cache key ever reach the DOM as markup.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import type { Context } from 'koa';
import { parse } from 'yaml';
import { DsyncError } from '../errors.js';
import type { AppRouter } from './app.js';

/** Where a file comes from: the package (relative to its root) or swagger-ui-dist. */
interface AssetSource {
  readonly from: 'package' | 'swagger';
  readonly file: string;
  readonly type: string;
}

const HTML = 'text/html; charset=utf-8';
const JS = 'text/javascript; charset=utf-8';
const CSS = 'text/css; charset=utf-8';

/** `/ui/{asset}`: the cluster page's own files. */
const UI_ASSETS: Readonly<Record<string, AssetSource>> = {
  'app.js': { from: 'package', file: 'src/ui/app.js', type: JS },
  'style.css': { from: 'package', file: 'src/ui/style.css', type: CSS },
  'favicon.svg': { from: 'package', file: 'src/ui/favicon.svg', type: 'image/svg+xml' },
};
/** `/docs/{asset}`: Swagger UI's files and our initializer. */
const DOCS_ASSETS: Readonly<Record<string, AssetSource>> = {
  'swagger-ui.css': { from: 'swagger', file: 'swagger-ui.css', type: CSS },
  'swagger-ui-bundle.js': { from: 'swagger', file: 'swagger-ui-bundle.js', type: JS },
  'favicon-32x32.png': { from: 'swagger', file: 'favicon-32x32.png', type: 'image/png' },
  'docs.js': { from: 'package', file: 'src/ui/docs.js', type: JS },
};
const PAGES = {
  cluster: { from: 'package', file: 'src/ui/index.html', type: HTML },
  docs: { from: 'package', file: 'src/ui/docs.html', type: HTML },
} as const satisfies Record<string, AssetSource>;

/** The OpenAPI document, relative to the package root. */
export const OPENAPI_FILE = 'docs/openapi.yaml';
/** Bodies smaller than this are sent as they are: gzip would not pay for itself. */
const GZIP_BYTES_MIN = 1024;

/** Scripts, styles, images and requests from this node only; Swagger UI needs inline styles
 * and data: images for its icons. */
export const PAGE_CSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
  "img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; " +
  "base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/** A Host header we are willing to echo into the OpenAPI `servers` list: a DNS name or IPv4
 * address, or an IPv6 address in brackets, with an optional port. */
const HOST_RE = /^(\[[0-9A-Fa-f:.]{2,45}\]|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?)(?::(\d{1,5}))?$/;

interface LoadedAsset {
  readonly type: string;
  readonly body: Buffer;
  readonly etag: string;
  /** Resolves to the gzipped body, or null when gzip does not make it smaller. */
  gzipped?: Promise<Buffer | null>;
}

/** The directory of the installed dsync package: the nearest parent of this file with a
 * package.json named dsync (dist/src/http/ when built, src/http/ when run from source). */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: unknown })
      .name === 'dsync') return dir;
    dir = dirname(dir);
  }
  throw new Error('the dsync package root (a package.json named dsync) was not found above ' +
    `${fileURLToPath(import.meta.url)}; reinstall dsync`);
}

function swaggerDir(): string {
  const require = createRequire(import.meta.url);
  return dirname(require.resolve('swagger-ui-dist/package.json'));
}

/** Reads a file of the package, with an error that says what is missing and how to fix it. */
function readPackageFile(root: string, file: string): Buffer {
  const path = join(root, file);
  if (!existsSync(path)) {
    throw new Error(`${file} is missing from the installed dsync package (${root}): the node ` +
      'serves it on every node (API docs and cluster page). Reinstall the package, or copy ' +
      'docs/openapi.yaml and src/ui/ next to dist/ when building an image');
  }
  return readFileSync(path);
}

/** The pages and assets of one node. Construction reads and checks every package file, so a
 * broken installation fails at start-up, not on the first page view. */
export class Pages {
  private readonly root = packageRoot();
  private readonly assets = new Map<string, LoadedAsset>();
  /** docs/openapi.yaml as JSON, parsed once. */
  private readonly openapi: Record<string, unknown>;

  constructor() {
    this.openapi = loadOpenApi(this.root);
    for (const src of [...Object.values(UI_ASSETS), ...Object.values(DOCS_ASSETS),
      ...Object.values(PAGES)]) {
      if (src.from === 'package') this.load(src);
    }
  }

  register(router: AppRouter): void {
    router.get('/', (ctx) => this.send(ctx, PAGES.cluster, true));
    router.get('/docs', (ctx) => this.send(ctx, PAGES.docs, true));
    router.get('/ui/:asset', (ctx) => this.send(ctx, pick(UI_ASSETS, ctx.params.asset, '/ui/')));
    router.get('/docs/:asset', (ctx) =>
      this.send(ctx, pick(DOCS_ASSETS, ctx.params.asset, '/docs/')));
    router.get('/openapi.json', (ctx) => {
      ctx.set('Cache-Control', 'no-cache');
      ctx.body = { ...this.openapi, servers: [serverOf(ctx)] };
    });
  }

  private load(src: AssetSource): LoadedAsset {
    const key = `${src.from}:${src.file}`;
    let a = this.assets.get(key);
    if (a === undefined) {
      const body = src.from === 'package' ? readPackageFile(this.root, src.file)
        : readFileSync(join(swaggerDir(), src.file));
      const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
      a = { type: src.type, body, etag };
      this.assets.set(key, a);
    }
    return a;
  }

  private async send(ctx: Context, src: AssetSource, page = false): Promise<void> {
    const a = this.load(src);
    ctx.set('ETag', a.etag);
    // Revalidate every time: an upgraded node serves new files under the same names.
    ctx.set('Cache-Control', 'no-cache');
    ctx.set('X-Content-Type-Options', 'nosniff');
    if (page) {
      ctx.set('Content-Security-Policy', PAGE_CSP);
      ctx.set('Referrer-Policy', 'no-referrer');
    }
    ctx.vary('Accept-Encoding');
    ctx.type = a.type;
    // Koa judges freshness only for a 2xx, and a response is 404 until it has a body.
    ctx.status = 200;
    if (ctx.fresh) {
      ctx.status = 304;
      return;
    }
    const gz = ctx.acceptsEncodings('gzip', 'identity') === 'gzip' ? await gzipped(a) : null;
    if (gz !== null) ctx.set('Content-Encoding', 'gzip');
    ctx.body = gz ?? a.body;
  }
}

let shared: Pages | null = null;

/** The pages of this process: the files are read once however many apps it runs. */
export function sharedPages(): Pages {
  shared ??= new Pages();
  return shared;
}

function gzipped(a: LoadedAsset): Promise<Buffer | null> {
  a.gzipped ??= a.body.length < GZIP_BYTES_MIN ? Promise.resolve(null)
    : promisify(gzip)(a.body).then((z) => (z.length < a.body.length ? z : null));
  return a.gzipped;
}

function pick(table: Readonly<Record<string, AssetSource>>, name: string | undefined,
  prefix: string): AssetSource {
  const src = name === undefined || !Object.hasOwn(table, name) ? undefined : table[name];
  if (src === undefined) {
    throw new DsyncError('NOT_FOUND', `no asset ${prefix}${String(name)}; the pages are ` +
      `GET / and GET /docs (assets: ${Object.keys(table).map((n) => prefix + n).join(', ')})`);
  }
  return src;
}

function loadOpenApi(root: string): Record<string, unknown> {
  const doc = parse(readPackageFile(root, OPENAPI_FILE).toString('utf8')) as unknown;
  if (typeof doc !== 'object' || doc === null || !('openapi' in doc) || !('paths' in doc)) {
    throw new Error(`${join(root, OPENAPI_FILE)} is not an OpenAPI document; reinstall dsync`);
  }
  return doc;
}

/** This node as the client reached it, so that "Try it out" calls the node that served the
 * page (through a port-forward too). A Host header that is not a plain host[:port] is not
 * echoed: the server is then `/`, which a client resolves against the document's own URL. */
function serverOf(ctx: Context): { url: string; description: string } {
  const host = ctx.get('Host');
  const description = 'the node that served this document';
  const m = HOST_RE.exec(host);
  if (m === null || Number(m[2] ?? 0) > 65535) return { url: '/', description };
  return { url: `${ctx.protocol}://${host}`, description };
}
