// The routes each service serves, taken from docs/openapi.yaml (which test/docs/openapi.test.ts
// keeps equal to what the code registers). One table maps a service to the OpenAPI tags of
// its operations; every test that walks "all routes of a node" starts from here, so a new
// service's routes join those tests by documenting them and adding one line to this table.
import type { ServiceName } from '../../src/config.js';
import { bodyFields, isPlanned, operations, type BodyField } from './openapi.js';

/** OpenAPI tags served by a node of each service (`node` = /health, /ready, /metrics). */
export const SERVICE_ROUTE_TAGS: Readonly<Record<ServiceName, readonly string[]>> = {
  lock: ['node', 'locks', 'cluster'],
  queue: ['node', 'queues'],
  cache: ['node', 'cache'],
};

export interface Route {
  /** Upper case: `POST`. */
  readonly method: string;
  /** OpenAPI template: `/v1/locks/{name}/acquire`. */
  readonly path: string;
  /** Its OpenAPI tag: the route group (`locks`, `cluster`, `node`, …). */
  readonly group: string;
  /** Names of the path parameters, in order. */
  readonly params: readonly string[];
  /** Top-level fields of its JSON body; empty when it takes none. */
  readonly bodyFields: readonly BodyField[];
}

/** Every documented, served (not `planned`) route of a node of `service`. */
export function routesOf(service: ServiceName): Route[] {
  const tags = SERVICE_ROUTE_TAGS[service];
  const out: Route[] = [];
  for (const o of operations()) {
    if (isPlanned(o)) continue;
    const group = ((o.op.tags as string[] | undefined) ?? []).find((t) => tags.includes(t));
    if (group === undefined) continue;
    out.push({
      method: o.method.toUpperCase(), path: o.path, group,
      params: [...o.path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!),
      bodyFields: bodyFields(o),
    });
  }
  return out;
}

/** The routes of `service` by group, e.g. `{ locks: [...], cluster: [...], node: [...] }`. */
export function routeGroupsOf(service: ServiceName): Map<string, Route[]> {
  const groups = new Map<string, Route[]>();
  for (const r of routesOf(service)) {
    const g = groups.get(r.group) ?? [];
    g.push(r);
    groups.set(r.group, g);
  }
  return groups;
}
