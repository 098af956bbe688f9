// The process-level policy for errors that escape every handler (src/observability/
// process-faults.ts): an unhandled rejection is logged with its stack, counted, and the node
// keeps running; an uncaught exception is logged as fatal and the node exits 70. The process
// events and exit go through a fake host (an EventEmitter), so the runner itself is never
// exited; the logger and the metrics registry are the real ones.
import { EventEmitter } from 'node:events';
import { Writable } from 'node:stream';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/observability/logger.js';
import {
  EXIT_CODE_UNCAUGHT, installFaultPolicy, type FaultHost,
} from '../../src/observability/process-faults.js';
import { waitFor } from '../support/wait.js';

function setup() {
  const emitter = new EventEmitter();
  const exits: number[] = [];
  const host = {
    on: (e: string, l: (x: unknown) => void) => emitter.on(e, l),
    off: (e: string, l: (x: unknown) => void) => emitter.off(e, l),
    exit: (code: number) => { exits.push(code); },
  } as unknown as FaultHost;
  const lines: Array<Record<string, unknown>> = [];
  const destination = new Writable({
    write(chunk: Buffer, _e, cb) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l));
      cb();
    },
  });
  const logger = createLogger({ level: 'info', node: 'n-0', service: 'lock', destination });
  const registry = new Registry();
  const policy = installFaultPolicy(logger, registry, host);
  return { emitter, exits, lines, registry, policy };
}

describe('process fault policy', () => {
  it('an unhandled rejection is logged with its stack and counted; the node keeps running',
    async () => {
      const { emitter, exits, lines, registry, policy } = setup();
      emitter.emit('unhandledRejection', new Error('read not confirmed by a quorum'));
      emitter.emit('unhandledRejection', 'a string');
      await waitFor('two log lines', () => lines.length >= 2);
      expect(exits).toEqual([]);
      const err = lines[0]?.err as { stack?: string; message?: string };
      expect(err.message).toBe('read not confirmed by a quorum');
      expect(err.stack).toContain('process-faults.test.ts');
      expect(lines[0]?.level).toBe(50);
      expect(await registry.metrics()).toMatch(/^dsync_unhandled_rejections_total 2$/m);
      policy.dispose();
      expect(emitter.listenerCount('unhandledRejection')).toBe(0);
    });

  it('an uncaught exception is logged as fatal and the node exits 70', async () => {
    const { emitter, exits, lines } = setup();
    emitter.emit('uncaughtException', new Error('half-updated state'));
    await waitFor('the exit', () => exits.length > 0);
    expect(exits).toEqual([EXIT_CODE_UNCAUGHT]);
    expect(lines.find((l) => l.level === 60)?.msg).toMatch(/uncaught exception/);
  });
});
