// docs/openapi.yaml, loaded once for the tests that check the code against it and for the
// tests that derive their route lists from it (the contract is the one list of routes).
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';

export type Json = Record<string, unknown>;

const ROOT = new URL('../../', import.meta.url);
export const SPEC = parse(readFileSync(new URL('docs/openapi.yaml', ROOT), 'utf8')) as Json;
export const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'] as const;

export interface Operation {
  /** OpenAPI path template, e.g. `/v1/locks/{name}/acquire`. */
  readonly path: string;
  /** Lower case, as in the document. */
  readonly method: string;
  readonly op: Json;
}

export function obj(v: unknown, where: string): Json {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new Error(`${where} is not an object`);
  }
  return v as Json;
}

/** Follows a local `$ref` ("#/a/b") to its target; anything else comes back unchanged. */
export function deref(v: unknown, where: string): Json {
  const o = obj(v, where);
  const ref = o.$ref;
  if (typeof ref !== 'string') return o;
  if (!ref.startsWith('#/')) throw new Error(`${where}: only local refs (${ref})`);
  let cur: unknown = SPEC;
  for (const part of ref.slice(2).split('/')) cur = obj(cur, ref)[part];
  return deref(cur, ref);
}

export function operations(): Operation[] {
  const out: Operation[] = [];
  for (const [path, item] of Object.entries(obj(SPEC.paths, 'paths'))) {
    for (const method of METHODS) {
      const op = obj(item, path)[method];
      if (op !== undefined) out.push({ path, method, op: obj(op, `${method} ${path}`) });
    }
  }
  return out;
}

export const isPlanned = (o: Operation): boolean => o.op['x-dsync-status'] === 'planned';

/** A top-level field of a JSON request body, with what its schema says of its kind. */
export interface BodyField {
  readonly name: string;
  /** JSON Schema `type` (`integer`, `string`, …); undefined for any JSON. */
  readonly type?: string;
  readonly minimum?: number;
  readonly maximum?: number;
}

/** The top-level fields of an operation's JSON request body (none without a body). */
export function bodyFields(o: Operation): BodyField[] {
  const rb = o.op.requestBody;
  if (rb === undefined) return [];
  const json = obj(obj(deref(rb, 'requestBody').content, 'content')['application/json'], 'json');
  const fields = new Map<string, BodyField>();
  const collect = (schema: unknown, where: string): void => {
    const s = deref(schema, where);
    for (const [name, raw] of Object.entries(obj(s.properties ?? {}, where))) {
      const p = deref(raw, `${where}.${name}`);
      fields.set(name, { name,
        ...(typeof p.type === 'string' ? { type: p.type } : {}),
        ...(typeof p.minimum === 'number' ? { minimum: p.minimum } : {}),
        ...(typeof p.maximum === 'number' ? { maximum: p.maximum } : {}) });
    }
    for (const alt of [...(s.oneOf as unknown[] | undefined) ?? [],
      ...(s.anyOf as unknown[] | undefined) ?? [],
      ...(s.allOf as unknown[] | undefined) ?? []]) collect(alt, where);
  };
  collect(json.schema, `${o.method} ${o.path} body`);
  return [...fields.values()];
}
