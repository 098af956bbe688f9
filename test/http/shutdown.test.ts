// Graceful shutdown (src/observability/shutdown.ts): steps in order, once, with per-step and
// overall deadlines, and the exit code that tells Kubernetes whether it went cleanly. Signals
// and exit go through a fake host so the test runner is never signalled or exited.
import { describe, expect, it } from 'vitest';
import { EventEmitter } from 'node:events';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/observability/logger.js';
import { onShutdown } from '../../src/observability/shutdown.js';
import type { ShutdownHost, ShutdownStep } from '../../src/observability/shutdown.js';

function fakeHost() {
  const emitter = new EventEmitter();
  const exits: number[] = [];
  let onExit: (code: number) => void = () => undefined;
  const exited = new Promise<number>((resolve) => { onExit = resolve; });
  const host: ShutdownHost = {
    once: (s, l) => emitter.once(s, l),
    off: (s, l) => emitter.off(s, l),
    exit: (code) => { exits.push(code); onExit(code); },
  };
  return { emitter, host, exits, exited };
}

function logSink() {
  const lines: Array<Record<string, unknown>> = [];
  const destination = new Writable({
    write(chunk: Buffer, _e, cb) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l));
      cb();
    },
  });
  return { lines, logger: createLogger({ level: 'info', node: 'n-0', service: 'lock',
    destination }) };
}

const step = (name: string, order: string[], run?: () => Promise<void>): ShutdownStep => ({
  name, timeoutMs: 2000, run: run ?? (async () => { order.push(name); }),
});

describe('onShutdown', () => {
  it('runs the steps in order once on SIGTERM, logs each and exits 0', async () => {
    const { emitter, host, exits, exited } = fakeHost();
    const { lines, logger } = logSink();
    const order: string[] = [];
    const steps = ['transfer-leadership', 'flush-cache', 'close-http'].map((n) => step(n, order));
    const h = onShutdown(['SIGTERM', 'SIGINT'], steps, { logger, host });
    emitter.emit('SIGTERM');
    expect(await exited).toBe(0);
    expect(order).toEqual(['transfer-leadership', 'flush-cache', 'close-http']);
    expect(await h.trigger('again')).toBe(0);
    expect(order).toHaveLength(3);
    expect(exits).toEqual([0]);
    expect(lines.filter((l) => l.msg === 'shutdown step done').map((l) => l.step))
      .toEqual(['transfer-leadership', 'flush-cache', 'close-http']);
    h.dispose();
  });

  it('a failing or overrunning step is logged, later steps still run, exit code is 1',
    async () => {
      const { emitter, host, exited } = fakeHost();
      const { lines, logger } = logSink();
      const order: string[] = [];
      const steps = [
        step('fails', order, async () => { throw new Error('disk gone'); }),
        { name: 'hangs', timeoutMs: 50, run: () => new Promise<void>(() => undefined) },
        step('last', order),
      ];
      onShutdown(['SIGINT'], steps, { logger, host });
      emitter.emit('SIGINT');
      expect(await exited).toBe(1);
      expect(order).toEqual(['last']);
      const failed = lines.filter((l) => l.msg === 'shutdown step failed').map((l) => l.step);
      expect(failed).toEqual(['fails', 'hangs']);
    });

  it('the overall deadline ends a shutdown whose steps do not finish, with exit 1', async () => {
    const { host, exited } = fakeHost();
    const { lines, logger } = logSink();
    const never = () => new Promise<void>(() => undefined);
    const h = onShutdown([], [{ name: 'a', timeoutMs: 60_000, run: never }],
      { logger, host, deadlineMs: 50 });
    void h.trigger('test');
    expect(await exited).toBe(1);
    expect(lines.some((l) => String(l.msg).includes('deadline passed'))).toBe(true);
  });

  it('a second signal during shutdown exits at once with 1', async () => {
    const { emitter, host, exits } = fakeHost();
    const { logger } = logSink();
    let release: () => void = () => undefined;
    const slow = () => new Promise<void>((r) => { release = r; });
    onShutdown(['SIGTERM'], [{ name: 'slow', timeoutMs: 60_000, run: slow }], { logger, host });
    emitter.emit('SIGTERM');
    emitter.emit('SIGTERM');
    expect(exits).toEqual([1]);
    release();
  });
});
