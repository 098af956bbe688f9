// HTTP/1.1 over a bare TCP socket, for tests that must send what no well-behaved client
// sends: unknown or lower-case methods, malformed percent-encoding, invalid UTF-8, bodies that
// lie about their type. fetch and undici validate all of that away before it leaves.
import { connect } from 'node:net';

export interface RawRequest {
  readonly method: string;
  /** The request target exactly as it goes on the wire, e.g. `/v1/locks/%zz/acquire`. */
  readonly target: string;
  readonly headers?: ReadonlyArray<readonly [string, string]>;
  readonly body?: Uint8Array;
  /** Send the body with Transfer-Encoding: chunked instead of Content-Length. */
  readonly chunked?: boolean;
}

export interface RawResponse {
  readonly status: number;
  /** Lower-case names; a repeated header keeps its last value. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
}

const HEAD_END = Buffer.from('\r\n\r\n');

function requestBytes(host: string, req: RawRequest): Buffer {
  const lines = [`${req.method} ${req.target} HTTP/1.1`, `Host: ${host}`, 'Connection: close'];
  for (const [name, value] of req.headers ?? []) lines.push(`${name}: ${value}`);
  const body = req.body === undefined ? null : Buffer.from(req.body);
  if (body !== null && req.chunked === true) {
    lines.push('Transfer-Encoding: chunked');
    const chunk = body.length === 0 ? Buffer.alloc(0)
      : Buffer.concat([Buffer.from(`${body.length.toString(16)}\r\n`), body, Buffer.from('\r\n')]);
    return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), chunk,
      Buffer.from('0\r\n\r\n')]);
  }
  if (body !== null) lines.push(`Content-Length: ${body.length}`);
  return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'),
    body ?? Buffer.alloc(0)]);
}

function dechunk(raw: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = raw.indexOf('\r\n', at);
    if (eol < 0) throw new Error('truncated chunked body');
    const size = parseInt(raw.subarray(at, eol).toString('latin1'), 16);
    if (!Number.isFinite(size)) throw new Error('bad chunk size');
    if (size === 0) return Buffer.concat(parts);
    parts.push(raw.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
}

/** Parses one complete response; null while more bytes are needed. HEAD answers carry no
 * body whatever their Content-Length says. */
export function parseResponse(raw: Buffer, head = false): RawResponse | null {
  const end = raw.indexOf(HEAD_END);
  if (end < 0) return null;
  const [statusLine = '', ...headerLines] = raw.subarray(0, end).toString('latin1').split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine);
  if (m === null) throw new Error(`not an HTTP response: ${JSON.stringify(statusLine)}`);
  const headers: Record<string, string> = {};
  for (const l of headerLines) {
    const colon = l.indexOf(':');
    if (colon > 0) headers[l.slice(0, colon).trim().toLowerCase()] = l.slice(colon + 1).trim();
  }
  const rest = raw.subarray(end + HEAD_END.length);
  const status = Number(m[1]);
  if (head || status === 204 || status === 304) return { status, headers, body: Buffer.alloc(0) };
  if (headers['transfer-encoding']?.toLowerCase() === 'chunked') {
    if (rest.indexOf('0\r\n\r\n') < 0) return null;
    return { status, headers, body: dechunk(rest) };
  }
  const length = headers['content-length'];
  if (length === undefined) return null; // read until close
  if (rest.length < Number(length)) return null;
  return { status, headers, body: rest.subarray(0, Number(length)) };
}

/** Sends one request on a fresh connection (Connection: close) and reads the answer. Rejects
 * when the server closes without a complete response or the deadline passes. */
export function rawRequest(port: number, req: RawRequest, timeoutMs = 10_000):
  Promise<RawResponse> {
  const head = req.method === 'HEAD';
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    let settled = false;
    const finish = (err: Error | null, res?: RawResponse): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (err !== null) reject(err);
      else resolve(res!);
    };
    const timer = setTimeout(() => finish(new Error(
      `no answer to ${req.method} ${req.target} within ${timeoutMs} ms`)), timeoutMs);
    const tryParse = (atEnd: boolean): void => {
      const all = Buffer.concat(chunks);
      try {
        const res = parseResponse(all, head);
        if (res !== null) { finish(null, res); return; }
        if (!atEnd) return;
        const end = all.indexOf(HEAD_END);
        // Without Content-Length the body runs until the server closes.
        if (end >= 0) {
          const partial = parseResponse(Buffer.concat([all.subarray(0, end),
            Buffer.from(`\r\ncontent-length: ${all.length - end - 4}`), all.subarray(end)]), head);
          if (partial !== null) { finish(null, partial); return; }
        }
        finish(new Error(`connection closed without a complete answer to ${req.method} ` +
          `${req.target} (got ${JSON.stringify(all.toString('latin1').slice(0, 200))})`));
      } catch (err) {
        finish(err as Error);
      }
    };
    socket.on('data', (c: Buffer) => { chunks.push(c); tryParse(false); });
    socket.once('end', () => tryParse(true));
    socket.once('close', () => tryParse(true));
    // The server may answer (e.g. 400) and close while the request is still being written.
    socket.on('error', () => tryParse(true));
    socket.once('connect', () => socket.write(requestBytes(`127.0.0.1:${port}`, req)));
  });
}
