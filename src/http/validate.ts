// Validation at the HTTP edge: zod schemas for bodies, and the name and duration rules of
// API.md. Every failure is an InvalidArgumentError whose `field` is the path of the offending
// value (e.g. "ttlMs", "messages.3.delayMs"), so a client can point at it. Out-of-bounds values
// are rejected, never clamped: a silently shortened lease is a correctness bug for the caller.
import { z } from 'zod';
import { InvalidArgumentError } from '../errors.js';

/** Names of locks, topics and cache keys: bytes of UTF-8. */
export const NAME_BYTES_MAX = 256;
/** Lock owners and consumer groups. */
export const OWNER_BYTES_MAX = 128;

// Cc = C0, DEL and C1 controls; Cs = a lone surrogate, which has no UTF-8 encoding.
const FORBIDDEN_RE = /[\p{Cc}\p{Cs}]/u;

/** Why `value` is not a valid name of at most `bytesMax` UTF-8 bytes, or null when it is. */
export function nameProblem(value: string, bytesMax: number): string | null {
  if (value.length === 0) return 'must not be empty';
  if (FORBIDDEN_RE.test(value)) return 'must not contain control characters or lone surrogates';
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes > bytesMax) return `must be at most ${bytesMax} bytes of UTF-8 (got ${bytes})`;
  return null;
}

/** Checks a decoded name; returns it unchanged. */
export function checkName(value: unknown, field: string, bytesMax = NAME_BYTES_MAX): string {
  if (typeof value !== 'string') {
    throw new InvalidArgumentError(field, `${field} must be a string`);
  }
  const problem = nameProblem(value, bytesMax);
  if (problem !== null) throw new InvalidArgumentError(field, `${field} ${problem}`);
  return value;
}

/** Percent-decodes one raw path segment; malformed encoding (`%zz`, a truncated `%e2%82`,
 * invalid UTF-8) is a 400 naming the field rather than a 500 or a silently raw string. */
export function decodePathSegment(raw: string, field: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new InvalidArgumentError(field, `${field} has malformed percent-encoding; ` +
      'encode names with encodeURIComponent (UTF-8)');
  }
}

/**
 * A name from a route parameter, e.g. `parseName(ctx.params.name, 'name')`.
 *
 * @koa/router has already percent-decoded `ctx.params` (it leaves a segment raw when decoding
 * fails), and createApp rejects any request whose path has malformed percent-encoding with 400
 * before routing. So the value here is decoded exactly once; decoding it again would corrupt
 * names that contain `%` (sent as `%25`). Use decodePathSegment for raw segments.
 */
export function parseName(value: string | undefined, field: string): string {
  if (value === undefined) throw new InvalidArgumentError(field, `${field} is missing`);
  return checkName(value, field, NAME_BYTES_MAX);
}

/** The header that names the calling client (the SDK sends one per client instance). */
export const CLIENT_ID_HEADER = 'x-dsync-client';
/** Client ids: printable ASCII, like request ids; they travel in every Raft entry. */
export const CLIENT_ID_BYTES_MAX = 128;
const CLIENT_ID_RE = new RegExp(`^[\\x21-\\x7e]{1,${CLIENT_ID_BYTES_MAX}}$`);

/** The caller's x-dsync-client, or null when it sent none; anything but 1..128 printable ASCII
 * characters is a 400 (it is stored with every de-duplicated command). */
export function clientIdOf(ctx: { get(name: string): string }): string | null {
  const v = ctx.get(CLIENT_ID_HEADER);
  if (v === '') return null;
  if (!CLIENT_ID_RE.test(v)) {
    throw new InvalidArgumentError(CLIENT_ID_HEADER, `${CLIENT_ID_HEADER} must be 1 to ` +
      `${CLIENT_ID_BYTES_MAX} printable ASCII characters (the SDK sends a UUID); fix or omit it`);
  }
  return v;
}

/** Turns a zod error into an InvalidArgumentError naming the first offending path. */
export function invalidFromZod(err: z.ZodError, root = 'body'): InvalidArgumentError {
  const issue = err.issues[0];
  if (issue === undefined) return new InvalidArgumentError(root, `${root} is invalid`);
  if (issue.code === 'unrecognized_keys') {
    const field = issue.keys.join(',');
    return new InvalidArgumentError(field, `unknown field(s) ${field} in ${root}`);
  }
  const field = issue.path.length === 0 ? root : issue.path.map(String).join('.');
  return new InvalidArgumentError(field, `${field}: ${issue.message}`);
}

/** Parses `value` with `schema`, throwing InvalidArgumentError on failure. */
export function parseWith<S extends z.ZodType>(schema: S, value: unknown, root = 'body'):
  z.output<S> {
  const res = schema.safeParse(value);
  if (!res.success) throw invalidFromZod(res.error, root);
  return res.data;
}

/** Text of 1..bytesMax bytes of UTF-8 without control characters or lone surrogates (names,
 * owners, request ids): zod's own max() counts UTF-16 code units, not bytes. */
export function textSchema(bytesMax: number) {
  return z.string().check((ctx) => {
    const problem = nameProblem(ctx.value, bytesMax);
    if (problem !== null) ctx.issues.push({ code: 'custom', message: problem, input: ctx.value });
  });
}

/** Lock names, topics, cache keys inside bodies: 1..256 bytes of UTF-8, no controls. */
export const nameSchema = textSchema(NAME_BYTES_MAX);
/** Owners and consumer groups: 1..128 bytes of UTF-8, no controls. */
export const ownerSchema = textSchema(OWNER_BYTES_MAX);

/** An integer duration in ms within [minMs, maxMs]; API.md: never clamped. */
export function durationMs(minMs: number, maxMs: number) {
  return z.number({ error: 'must be an integer number of milliseconds' })
    .int({ error: 'must be an integer number of milliseconds' })
    .min(minMs, { error: `must be at least ${minMs} ms` })
    .max(maxMs, { error: `must be at most ${maxMs} ms` });
}

/** An integer count within [min, max] (batch sizes, `max` of receive). */
export function intInRange(min: number, max: number) {
  return z.number({ error: 'must be an integer' })
    .int({ error: 'must be an integer' })
    .min(min, { error: `must be at least ${min}` })
    .max(max, { error: `must be at most ${max}` });
}
