// Request bodies, read by us with a byte limit (API.md: 413 over the limit, 400 for malformed
// JSON). The limit is checked against Content-Length before reading anything and again while
// streaming, since chunked bodies declare no length. Nesting depth is bounded as well, before
// JSON.parse: a value nested thousands deep parses, but everything that walks it afterwards
// by recursion (JSON.stringify, zod, msgpack) overflows the stack.
import type { IncomingMessage } from 'node:http';
import { DsyncError, InvalidArgumentError } from '../errors.js';
import { assert } from '../assert.js';

/** Marks an IncomingMessage whose body arrived whole with it (a request forwarded over the
 * peer transport): the app reads the body from here instead of the stream. */
export const FORWARDED_BODY = Symbol('dsync.forwardedBody');

export class PayloadTooLargeError extends DsyncError {
  constructor(bytesMax: number) {
    super('PAYLOAD_TOO_LARGE',
      `request body is larger than ${bytesMax} bytes; send less per request (batch smaller) ` +
      'or raise the node\'s bodyBytesMax', { details: { bytesMax } });
    this.name = 'PayloadTooLargeError';
  }
}

/** The client closed the connection before its body was complete. Nobody is left to read the
 * answer; the 400 only stands for "the request was never whole". */
export class ClientClosedError extends InvalidArgumentError {
  constructor() {
    super('body', 'the client closed the connection before the body was complete; send ' +
      'the whole body and wait for the answer');
    this.name = 'ClientClosedError';
  }
}

/** Reads the whole body into one Buffer, failing with PayloadTooLargeError past `bytesMax`.
 * On overflow the rest of the body is drained and discarded (not buffered), so the 413 can be
 * written and the connection stays usable. */
export async function readBodyBytes(req: IncomingMessage, bytesMax: number): Promise<Buffer> {
  assert(Number.isSafeInteger(bytesMax) && bytesMax > 0, 'bytesMax must be a positive integer');
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > bytesMax) {
    req.resume();
    throw new PayloadTooLargeError(bytesMax);
  }
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const onData = (chunk: Buffer): void => {
      total += chunk.length;
      if (total <= bytesMax) {
        chunks.push(chunk);
        return;
      }
      // Keep the stream flowing into nowhere: destroying it would take the socket with it and
      // the client would see a reset instead of our 413.
      req.off('data', onData);
      req.resume();
      chunks.length = 0;
      reject(new PayloadTooLargeError(bytesMax));
    };
    // A client that hangs up mid-body makes Node destroy the request with ECONNRESET
    // ("aborted"): that is the client's doing, not a fault of ours (the app logs it at debug
    // and counts it as a client abort once it sees the connection gone).
    const closedEarly = (): void => reject(new ClientClosedError());
    req.on('data', onData);
    req.once('end', () => resolve(Buffer.concat(chunks, total)));
    req.once('error', closedEarly);
    req.once('close', () => { if (!req.complete) closedEarly(); });
  });
}

/** Deepest nesting of arrays and objects in a request body, the body itself being level 1:
 * a cache value inside `{"value": …}` may nest 63 levels. Deeper is 400 INVALID_ARGUMENT. */
export const BODY_DEPTH_MAX = 64;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_ARRAY = 0x5b;
const OPEN_OBJECT = 0x7b;
const CLOSE_ARRAY = 0x5d;
const CLOSE_OBJECT = 0x7d;

/** True when JSON text nests arrays and objects deeper than `depthMax`: one linear pass over
 * the bytes, no recursion, brackets inside strings skipped. UTF-8 continuation bytes are never
 * ASCII, so scanning bytes is exact. Malformed text is left to JSON.parse to reject. */
export function nestedDeeperThan(bytes: Uint8Array, depthMax: number): boolean {
  // A valid document of depth d has at least 2d bytes of brackets.
  if (bytes.length <= 2 * depthMax) return false;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (inString) {
      if (b === BACKSLASH) i++;
      else if (b === QUOTE) inString = false;
    } else if (b === QUOTE) {
      inString = true;
    } else if (b === OPEN_ARRAY || b === OPEN_OBJECT) {
      if (++depth > depthMax) return true;
    } else if (b === CLOSE_ARRAY || b === CLOSE_OBJECT) {
      depth--;
    }
  }
  return false;
}

/** Parses JSON bytes; an empty body is `undefined` (routes decide whether they need one). */
export function parseJsonBytes(bytes: Buffer, depthMax: number = BODY_DEPTH_MAX): unknown {
  if (bytes.length === 0) return undefined;
  if (nestedDeeperThan(bytes, depthMax)) {
    throw new InvalidArgumentError('body', `request body nests arrays and objects deeper than ` +
      `${depthMax} levels; flatten it (a deep structure can be stored as a JSON string)`,
      { depthMax });
  }
  try {
    return JSON.parse(bytes.toString('utf8')) as unknown;
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new InvalidArgumentError('body', `request body is not valid JSON (${why})`);
  }
}

/** The body as a JSON object; no body counts as `{}` so that routes whose fields are all
 * optional can be called without one. Arrays, strings, numbers and null are 400. */
export function asObjectBody(body: unknown): Record<string, unknown> {
  if (body === undefined) return {};
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new InvalidArgumentError('body', 'request body must be a JSON object');
  }
  return body as Record<string, unknown>;
}
