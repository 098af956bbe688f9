// pino JSON logs. Every line of a node carries {node, service} so that logs of a whole cluster
// can be merged and filtered; callers add {term, role} or {reqId} with child loggers.
import { pino } from 'pino';
import type { DestinationStream, Logger } from 'pino';
import type { LogLevel, ServiceName } from '../config.js';

export type { Logger } from 'pino';

export interface LoggerOptions {
  readonly level: LogLevel;
  /** Node id, e.g. `lock-0`. */
  readonly node: string;
  readonly service: ServiceName | 'cli';
  /** Where lines go; stdout (fd 1) when absent. Tests pass a stream to read lines back. */
  readonly destination?: DestinationStream;
}

export function createLogger(opts: LoggerOptions): Logger {
  const base = pino(
    {
      level: opts.level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      // Errors under `err` keep their stack and cause; the code of a DsyncError comes along
      // because pino's serializer copies enumerable own properties.
      serializers: { err: pino.stdSerializers.errWithCause },
    },
    opts.destination ?? pino.destination({ fd: 1, sync: false }),
  );
  return base.child({ node: opts.node, service: opts.service });
}

/** A logger that drops everything, for tests and library use without a node. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
