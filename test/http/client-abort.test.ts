// A client that hangs up is not an internal error (issue 7, item 12): a real socket sends
// half a body and closes (or resets, or half-closes), or waits on a blocking route and goes
// away. Before: "internal error" (ECONNRESET) plus "unhandled error in koa" at error level,
// counted as a 500. Now: a debug line, dsync_http_client_aborts_total, status label 499.
import { connect } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DsyncError } from '../../src/errors.js';
import { objectBody } from '../../src/http/app.js';
import type { AppContext, AppRouter } from '../../src/http/app.js';
import { waitFor } from '../support/wait.js';
import { startTestApp } from './helpers.js';
import type { TestNode } from './helpers.js';

/** Requests whose head the server has parsed, and blocking calls that are waiting. */
const seen = { requests: 0, waiting: 0 };

/** A blocking route: answers when its client goes away, the way a waiting acquire does. */
function routes(router: AppRouter): void {
  router.post('/v1/echo/:name', (ctx) => { ctx.body = objectBody(ctx); });
  router.post('/v1/wait/:how', async (ctx: AppContext) => {
    objectBody(ctx);
    await new Promise<void>((resolve) => {
      ctx.res.once('close', () => resolve());
      seen.waiting++;
    });
    if (ctx.params.how === 'bug') throw new TypeError('a bug, whoever waits for the answer');
    throw new DsyncError('TIMEOUT', 'client went away');
  });
}

let node: TestNode;
beforeEach(async () => {
  node = await startTestApp('abort-0', { routes });
  seen.requests = 0;
  seen.waiting = 0;
  node.server.server.on('request', () => { seen.requests++; });
});
afterEach(async () => { await node.server.close(1000); });

type Ending = 'close' | 'reset' | 'half-close';

/** Opens a socket, sends `head` and `part`, then ends the connection the given way once the
 * server has read what was sent (it answers nothing before the body is whole). */
async function sendAndHangUp(head: string, part: string, ending: Ending,
  sentEnough: () => boolean): Promise<void> {
  const socket = connect({ host: '127.0.0.1', port: node.server.port });
  socket.on('error', () => undefined);
  socket.resume(); // read whatever comes, so that the server's FIN is seen and 'close' fires
  await new Promise<void>((r) => socket.once('connect', () => r()));
  socket.write(head + part);
  await waitFor('the server to read the partial request', sentEnough);
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  if (ending === 'reset') socket.resetAndDestroy();
  else if (ending === 'half-close') socket.end();
  else socket.destroy();
  await closed;
}

const metricLine = async (re: RegExp): Promise<string | null> => {
  const text = await node.metrics.text();
  return text.split('\n').find((l) => re.test(l)) ?? null;
};
const errorLines = (): Array<Record<string, unknown>> =>
  node.lines.filter((l) => typeof l.level === 'number' && l.level >= 50);

describe('a client that hangs up', () => {
  it.each<Ending>(['close', 'reset', 'half-close'])(
    'mid-body (%s) is logged at debug and counted as a client abort, not a 5xx',
    async (ending) => {
      const head = 'POST /v1/echo/a HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
        'Content-Length: 100\r\n\r\n';
      // Once the head is parsed the app reads the body, which never completes.
      await sendAndHangUp(head, '{"owner":', ending, () => seen.requests > 0);
      const aborts = await waitFor('the abort to be counted', () => metricLine(
        /^dsync_http_client_aborts_total\{route="\/v1\/echo\/:name",method="POST"/));
      expect(aborts).toMatch(/ 1$/);
      expect(await metricLine(/^dsync_http_requests_total\{.*status="499"/)).toMatch(/ 1$/);
      expect(await metricLine(/^dsync_http_requests_total\{.*status="5\d\d"/)).toBeNull();
      expect(errorLines()).toEqual([]);
      expect(node.lines.some((l) => l.level === 20 && /client/.test(String(l.msg)))).toBe(true);
    });

  it('while a blocking call waits is counted apart too, not as the 503 it ends with',
    async () => {
      const body = '{"owner":"o"}';
      const head = 'POST /v1/wait/timeout HTTP/1.1\r\nHost: x\r\nContent-Type: application/' +
        `json\r\nContent-Length: ${body.length}\r\n\r\n`;
      await sendAndHangUp(head, body, 'close', () => seen.waiting > 0);
      await waitFor('the abort to be counted', () => metricLine(
        /^dsync_http_client_aborts_total\{route="\/v1\/wait\/:how",method="POST".*\} 1$/));
      expect(await metricLine(/^dsync_http_requests_total\{.*status="503"/)).toBeNull();
      expect(errorLines()).toEqual([]);
      expect(node.lines.some((l) => l.level === 40)).toBe(false);
    });

  it('does not hide a bug: an unexpected error is still logged at error level', async () => {
    const body = '{"owner":"o"}';
    const head = 'POST /v1/wait/bug HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
      `Content-Length: ${body.length}\r\n\r\n`;
    await sendAndHangUp(head, body, 'close', () => seen.waiting > 0);
    await waitFor('the bug to be logged', () => errorLines().length > 0);
    expect(errorLines()[0]).toMatchObject({ msg: 'internal error' });
  });
});
