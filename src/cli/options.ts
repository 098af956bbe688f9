// The options every client command of `dsync` shares: where the nodes are (--endpoints, or
// the environment), how long one operation may take (--timeout) and how to print (-o), and
// the SDK client they describe.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { DsyncClient, type DsyncClientOptions, type ServiceName } from '../client/index.js';
import { checkNodeUrl } from '../client/http.js';
import type { OutputFormat } from './output.js';
import { usageError } from './report.js';

export const DEFAULT_DEV_DIR = '.dsync/dev';
/** HTTP ports of `dsync dev` (API.md). */
export const DEV_PORTS: Readonly<Record<ServiceName, readonly number[]>> = {
  lock: [8000, 8001, 8002], queue: [8100, 8101, 8102], cache: [8200, 8201, 8202],
};
/** Per-service variables: they win over DSYNC_ENDPOINTS, so one shell can name both. */
export const SERVICE_ENDPOINTS_ENV: Readonly<Record<ServiceName, string>> = {
  lock: 'DSYNC_LOCK_ENDPOINTS', queue: 'DSYNC_QUEUE_ENDPOINTS', cache: 'DSYNC_CACHE_ENDPOINTS',
};

export interface GlobalOptions {
  readonly output: OutputFormat;
  readonly endpoints?: string;
  readonly timeout?: number;
}

/** `500`, `500ms`, `2s`, `1m` → ms. */
export function duration(v: string): number {
  const m = /^\s*(\d+)\s*(ms|s|m)?\s*$/.exec(v);
  const n = m ? Number(m[1]) * (m[2] === 's' ? 1000 : m[2] === 'm' ? 60_000 : 1) : NaN;
  if (!Number.isSafeInteger(n)) {
    throw new InvalidArgumentError(`${JSON.stringify(v)} is not a duration: use ms, or 5s, 2m`);
  }
  return n;
}

/** An integer option (milliseconds unless said otherwise). */
export function int(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isSafeInteger(n)) {
    throw new InvalidArgumentError(`${JSON.stringify(v)} is not an integer (milliseconds)`);
  }
  return n;
}

/** The options of the top-level command, which every subcommand accepts anywhere. */
export function addGlobalOptions(program: Command): void {
  // An empty variable is an unset one (Commander would take '' as the value).
  for (const name of ['DSYNC_OUTPUT', 'DSYNC_ENDPOINTS']) {
    if (process.env[name] === '') delete process.env[name];
  }
  program
    .addOption(new Option('-o, --output <format>', 'how to print data')
      .choices(['table', 'json', 'yaml']).default('table').env('DSYNC_OUTPUT'))
    .addOption(new Option('--endpoints <urls>', 'node URLs, comma separated, of any services ' +
      '(default: the nodes of `dsync dev`)').env('DSYNC_ENDPOINTS'))
    .addOption(new Option('--urls <urls>', 'old name of --endpoints').hideHelp())
    .addOption(new Option('--timeout <duration>', 'time for one operation, retries included ' +
      '(e.g. 500ms, 5s; default 10s)').argParser(duration));
}

export function globalOptions(cmd: Command): GlobalOptions & { urls?: string } {
  return cmd.optsWithGlobals<GlobalOptions & { urls?: string }>();
}

/** Each URL checked here, so that a typo is a usage error at once rather than ten seconds
 * of retries; `what` names where the list came from. */
export function checkedUrls(raw: string, what: string): string[] {
  const urls = raw.split(',').map((s) => s.trim()).filter(Boolean);
  if (urls.length === 0) throw usageError(`${what} names no node: pass http://host:port,...`);
  for (const u of urls) {
    try {
      checkNodeUrl(u);
    } catch {
      throw usageError(`${what}: ${JSON.stringify(u)} is not a node URL; use ` +
        'http://host:port, e.g. http://127.0.0.1:8000');
    }
  }
  return urls;
}

/** Where `service`'s nodes are: --endpoints on the command line, else the service's own
 * variable, else DSYNC_ENDPOINTS, else `dsync dev`'s nodes. */
export function endpointsFor(cmd: Command, service: ServiceName): Pick<DsyncClientOptions,
  'endpoints' | 'locks' | 'queue' | 'cache'> & { from: string } {
  const g = globalOptions(cmd);
  const top = cmd.parent === null ? cmd : rootOf(cmd);
  const flag = g.urls ?? (top.getOptionValueSource('endpoints') === 'cli' ? g.endpoints : undefined);
  if (flag !== undefined) return { endpoints: checkedUrls(flag, '--endpoints'), from: '--endpoints' };
  const own = process.env[SERVICE_ENDPOINTS_ENV[service]];
  if (own) return { ...perService(service, checkedUrls(own, SERVICE_ENDPOINTS_ENV[service])),
    from: SERVICE_ENDPOINTS_ENV[service] };
  if (g.endpoints) {
    return { endpoints: checkedUrls(g.endpoints, 'DSYNC_ENDPOINTS'), from: 'DSYNC_ENDPOINTS' };
  }
  return { ...perService(service, devUrls(service)), from: '`dsync dev` defaults' };
}

function perService(service: ServiceName, urls: string[]): { locks?: string[];
  cache?: string[]; queue?: string[] } {
  return service === 'lock' ? { locks: urls } : service === 'cache' ? { cache: urls }
    : { queue: urls };
}

export function rootOf(cmd: Command): Command {
  let c = cmd;
  while (c.parent !== null) c = c.parent;
  return c;
}

/** The nodes of `dsync dev` for `service` (null: every service): its cluster.json when there
 * is one, else the default ports (`guessed`: nobody may listen there). */
export function devNodes(service: ServiceName | null, devDir = DEFAULT_DEV_DIR):
  { urls: string[]; guessed: boolean } {
  const file = join(devDir, 'cluster.json');
  if (existsSync(file)) {
    try {
      const doc = JSON.parse(readFileSync(file, 'utf8')) as {
        nodes: Array<{ url: string; service: string }> };
      // Only HTTP nodes have /health (the dev Redis is listed with a redis:// url).
      const urls = doc.nodes.filter((n) => n.url.startsWith('http') &&
        (service === null || n.service === service)).map((n) => n.url);
      if (urls.length > 0) return { urls, guessed: false };
    } catch { /* a torn file: fall back to the ports */ }
  }
  const services = service === null ? (['lock', 'queue', 'cache'] as const) : [service];
  return { urls: services.flatMap((s) => DEV_PORTS[s].map((p) => `http://127.0.0.1:${p}`)),
    guessed: true };
}

export function devUrls(service: ServiceName | null): string[] {
  return devNodes(service).urls;
}

/** The SDK client for a command of `service`. `longRunning` (lock run, elect, member add
 * --wait) learns the other nodes from /v1/cluster to fail over between them while it runs;
 * a one-shot command does not: its first node either answers (forwarding when it must) or
 * is down, and then cannot tell it the others either. */
export function clientFor(cmd: Command, service: ServiceName,
  o: { longRunning?: boolean } = {}): DsyncClient {
  const { from: _from, ...where } = endpointsFor(cmd, service);
  const g = globalOptions(cmd);
  return new DsyncClient({ ...where, ...(g.timeout === undefined ? {} : { timeoutMs: g.timeout }),
    discover: o.longRunning === true });
}
