#!/usr/bin/env node
// Entry point of the `dsync` command. It runs the compiled CLI; `npm run build` makes dist/.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const main = join(root, 'dist', 'src', 'cli', 'main.js');
if (!existsSync(main)) {
  process.stderr.write('dsync: dist/ is missing. Run `npm run build` in the project root first.\n');
  process.exit(1);
}
await import(main);
