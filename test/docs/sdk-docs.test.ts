// docs/sdk.md keeps up with the code: its error table names every code of the shared table
// (src/error-codes.ts) with its SDK class and status, and it links every runnable example.
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CLIENT_ERROR_CLASSES, WIRE_ERROR_CLASSES } from '../../src/client/errors.js';
import { CLIENT_ERROR_CODES, ERROR_CODES } from '../../src/error-codes.js';

const ROOT = new URL('../../', import.meta.url);
const SDK_MD = readFileSync(new URL('docs/sdk.md', ROOT), 'utf8');

describe('docs/sdk.md', () => {
  it('lists every error code with its class and status', () => {
    const rows = new Map(SDK_MD.split('\n').filter((l) => l.startsWith('| `'))
      .map((l) => l.split('|').map((c) => c.trim().replace(/`/g, '')))
      .map((cells) => [cells[2], { cls: cells[1], status: cells[3] }] as const));
    for (const [code, cls] of [...Object.entries(WIRE_ERROR_CLASSES),
      ...Object.entries(CLIENT_ERROR_CLASSES)]) {
      const row = rows.get(code);
      expect(row, code).toBeDefined();
      expect(row!.cls, code).toBe(cls.name);
      const status = Object.hasOwn(ERROR_CODES, code)
        ? String(ERROR_CODES[code as keyof typeof ERROR_CODES].status) : null;
      if (status !== null) expect(row!.status, code).toBe(status);
    }
    for (const code of Object.keys(ERROR_CODES)) expect(SDK_MD, code).toContain(code);
    for (const code of Object.keys(CLIENT_ERROR_CODES)) expect(SDK_MD, code).toContain(code);
  });

  it('links every example', () => {
    for (const f of readdirSync(new URL('examples', ROOT)).filter((x) => x.endsWith('.ts'))) {
      expect(SDK_MD, f).toContain(`(../examples/${f})`);
    }
  });
});
