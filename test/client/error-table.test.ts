// STYLE.md 20: the server's error codes and the SDK's error classes come from one table
// (src/error-codes.ts). Every code the server can raise reaches the SDK as the class of its
// wire code, through the real envelope functions, with the table's status and retryable flag;
// every SDK class belongs to a code of the table; docs/openapi.yaml lists exactly the codes.
import { describe, expect, it } from 'vitest';
import * as sdk from '../../src/client/index.js';
import {
  CLIENT_ERROR_CLASSES, DsyncError as SdkError, WIRE_ERROR_CLASSES, errorFromAnswer,
} from '../../src/client/errors.js';
import {
  CLIENT_ERROR_CODES, ERROR_CODES, HTTP_STATUS_BY_CODE, type ErrorCode,
} from '../../src/error-codes.js';
import { DsyncError as ServerError } from '../../src/errors.js';
import { errorFromEnvelope, errorResponse } from '../../src/http/envelope.js';
import { deref, obj, SPEC } from '../support/openapi.js';

const SERVER_CODES = Object.keys(ERROR_CODES) as ErrorCode[];

describe('one table of error codes for the server and the SDK', () => {
  it('every server code crosses the wire as a typed SDK error of the table', () => {
    for (const code of SERVER_CODES) {
      const spec = ERROR_CODES[code];
      const res = errorResponse(new ServerError(code, `a ${code}`, { details: { x: 1 } }));
      expect(res.status, code).toBe(spec.status);
      const wire = res.body.error.code;
      expect(wire, code).toBe(spec.wire ? code : 'UNAVAILABLE');
      const got = errorFromAnswer(res.status, JSON.parse(JSON.stringify(res.body)), 'http://n',
        res.retryAfterSeconds === null ? null : res.retryAfterSeconds * 1000);
      const cls = WIRE_ERROR_CLASSES[wire as keyof typeof WIRE_ERROR_CLASSES];
      expect(got, code).toBeInstanceOf(cls);
      expect(got, code).toBeInstanceOf(SdkError);
      expect([got.code, got.status, got.retryable], code).toEqual(
        [wire, spec.status, ERROR_CODES[wire].retryable]);
      expect(got.details.x, code).toBe(1);
      if (!spec.wire) expect(got.details.reason, code).toBe(code.toLowerCase());
      // Retry-After on exactly the retryable statuses.
      expect(res.retryAfterSeconds !== null, code).toBe(spec.status === 503 || spec.status === 429);
      if (res.retryAfterSeconds !== null) {
        expect(got.retryAfterMs).toBe(res.retryAfterSeconds * 1000);
      }
    }
  });

  it('the server keeps the table\'s retryable flag and reads envelopes back with it', () => {
    for (const code of SERVER_CODES) {
      expect(new ServerError(code, 'm').retryable, code).toBe(ERROR_CODES[code].retryable);
      const back = errorFromEnvelope({ error: { code, message: 'm' } });
      expect(back?.code, code).toBe(code);
    }
    // Names of Object.prototype are not codes.
    expect(errorFromEnvelope({ error: { code: 'toString', message: 'm' } })).toBeNull();
  });

  it('every SDK class is exported, and belongs to exactly one code', () => {
    const classes = [...Object.values(WIRE_ERROR_CLASSES), ...Object.values(CLIENT_ERROR_CLASSES)];
    expect(new Set(classes).size).toBe(classes.length);
    const exported = new Set<unknown>(Object.values(sdk));
    for (const c of classes) expect(exported.has(c), c.name).toBe(true);
    for (const [code, cls] of Object.entries(WIRE_ERROR_CLASSES)) {
      const e = new cls('m');
      expect([e.code, e.name], code).toEqual([code, cls.name]);
      expect(e.status).toBe(HTTP_STATUS_BY_CODE[code as ErrorCode]);
    }
    const wireCodes = SERVER_CODES.filter((c) => ERROR_CODES[c].wire).sort();
    expect(Object.keys(WIRE_ERROR_CLASSES).sort()).toEqual(wireCodes);
  });

  it('the SDK\'s own codes never collide with the server\'s and have status 0', () => {
    for (const code of Object.keys(CLIENT_ERROR_CODES)) {
      expect(Object.hasOwn(ERROR_CODES, code), code).toBe(false);
    }
    expect(Object.keys(CLIENT_ERROR_CLASSES).sort())
      .toEqual(Object.keys(CLIENT_ERROR_CODES).sort());
    const samples: SdkError[] = [new sdk.NetworkError('m', false), new sdk.BadResponseError('m'),
      new sdk.DeadlineExceededError('m'), new sdk.AbortError('m'), new sdk.LeaseLostError('m'),
      new sdk.ClientClosedError()];
    expect(samples.map((e) => e.code).sort()).toEqual(Object.keys(CLIENT_ERROR_CODES).sort());
    for (const e of samples) {
      expect(e.retryable, e.code).toBe(CLIENT_ERROR_CODES[e.code as keyof
        typeof CLIENT_ERROR_CODES].retryable);
    }
    expect(new sdk.BadResponseError('m').status).toBe(0);
  });

  it('docs/openapi.yaml lists exactly the server codes', () => {
    const codes = deref(obj(obj(SPEC.components, 'components').schemas, 'schemas').ErrorCode,
      'ErrorCode').enum as string[];
    expect([...codes].sort()).toEqual([...SERVER_CODES].sort());
  });

  it('typed details: DeadlockError.cycle, ResourceExhaustedError.limit, …', () => {
    const answer = (code: string, extra: object): SdkError =>
      errorFromAnswer(409, { error: { code, message: 'm', ...extra } }, 'http://n', null);
    expect((answer('DEADLOCK', { cycle: ['a', 'b'] }) as sdk.DeadlockError).cycle)
      .toEqual(['a', 'b']);
    expect((answer('NOT_HELD', { reason: 'expired' }) as sdk.NotHeldError).reason).toBe('expired');
    expect((answer('RESOURCE_EXHAUSTED', { limit: 'locks' }) as sdk.ResourceExhaustedError).limit)
      .toBe('locks');
    expect((answer('INVALID_ARGUMENT', { field: 'ttlMs' }) as sdk.InvalidArgumentError).field)
      .toBe('ttlMs');
    expect((answer('VERSION_MISMATCH', { currentVersion: 4 }) as sdk.VersionMismatchError)
      .currentVersion).toBe(4);
  });
});
