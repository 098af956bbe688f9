// The lines of `dsync queue publish --file`: a message object per line (or a body with
// --bodies), the defaults of --key and --delay for lines without their own, and a usage
// error that names the line for anything else.
import { describe, expect, it } from 'vitest';
import { messageOfLine, type FilePublishOptions } from '../../src/cli/queue-file.js';
import { UsageError } from '../../src/cli/report.js';

const O: FilePublishOptions = { file: 'in.jsonl', bodies: false, batch: 100, inFlight: 1 };

describe('messageOfLine', () => {
  it('takes a message object, with the defaults for what it leaves out', () => {
    expect(messageOfLine('{"body":{"a":1},"key":"k"}', 1, O)).toEqual({ body: { a: 1 }, key: 'k' });
    expect(messageOfLine('{"body":null,"dedupId":"d"}', 2, { ...O, key: 'dk', delayMs: 5 }))
      .toEqual({ body: null, dedupId: 'd', key: 'dk', delayMs: 5 });
    expect(messageOfLine('{"body":1,"key":"own"}', 3, { ...O, key: 'dk' }))
      .toEqual({ body: 1, key: 'own' });
  });

  it('takes any JSON value as the body with --bodies', () => {
    const b = { ...O, bodies: true };
    expect(messageOfLine('[1,2]', 1, b)).toEqual({ body: [1, 2] });
    expect(messageOfLine('{"nobody":1}', 1, b)).toEqual({ body: { nobody: 1 } });
  });

  it('names the line of what is not JSON or not a message', () => {
    const bad = (line: string): unknown => {
      try { messageOfLine(line, 7, O); } catch (err) { return err; }
      return null;
    };
    for (const line of ['not json', '[1]', '{"nobody":1}', '{"body":1,"extra":2}', '"text"']) {
      const err = bad(line);
      expect(err, line).toBeInstanceOf(UsageError);
      expect((err as Error).message, line).toMatch(/in\.jsonl line 7/);
    }
  });
});
