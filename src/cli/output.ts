// How client commands print data: `-o table` (default, for people), `-o json` and `-o yaml`
// (for scripts: exactly the SDK's answer). A command gives its data and, when a generic
// table does not read well, its own columns. Streams (elect --listen, queue tail) print one
// record at a time: a table line, one JSON document per line, or one YAML document each.
import Table from 'cli-table3';
import { stringify } from 'yaml';

export type OutputFormat = 'table' | 'json' | 'yaml';

/** A column: its header and how to get a cell from a row. */
export type Column<T> = readonly [header: string, cell: (row: T) => unknown];

/** No borders, two spaces between columns, as kubectl and etcdctl print tables. */
const BARE = {
  chars: { top: '', 'top-mid': '', 'top-left': '', 'top-right': '', bottom: '',
    'bottom-mid': '', 'bottom-left': '', 'bottom-right': '', left: '', 'left-mid': '', mid: '',
    'mid-mid': '', right: '', 'right-mid': '', middle: '  ' },
  style: { head: [], border: [], 'padding-left': 0, 'padding-right': 0 },
};

/** A cell as text: null/undefined as "-", objects as compact JSON. */
export function cellText(v: unknown): string {
  if (v === null || v === undefined) return '-';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  return JSON.stringify(v);
}

/** Rows under headers. */
export function table<T>(rows: readonly T[], columns: readonly Column<T>[]): string {
  const t = new Table({ head: columns.map(([h]) => h.toUpperCase()), ...BARE });
  for (const r of rows) t.push(columns.map(([, cell]) => cellText(cell(r))));
  return trimLines(t.toString());
}

/** One object as two columns, field and value. */
export function fields(obj: object): string {
  const t = new Table(BARE);
  for (const [k, v] of Object.entries(toPlain(obj) as Record<string, unknown>)) {
    t.push([k, cellText(v)]);
  }
  return trimLines(t.toString());
}

/** The table a value gets when its command gives none: an array of objects as rows (the
 * union of their fields as columns), an object as field/value pairs. */
export function defaultTable(data: unknown): string {
  const plain = toPlain(data);
  if (Array.isArray(plain)) {
    if (plain.length === 0) return '(none)';
    if (plain.every((r) => typeof r === 'object' && r !== null && !Array.isArray(r))) {
      const keys = [...new Set(plain.flatMap((r) => Object.keys(r as object)))];
      return table(plain as Record<string, unknown>[],
        keys.map((k) => [k, (r: Record<string, unknown>) => r[k]] as const));
    }
    return plain.map(cellText).join('\n');
  }
  if (typeof plain === 'object' && plain !== null) return fields(plain);
  return cellText(plain);
}

/** JSON round trip: what json and yaml print is exactly what JSON.stringify sees (toJSON of
 * a Lease, no functions). */
function toPlain(v: unknown): unknown {
  return v === undefined ? null : JSON.parse(JSON.stringify(v)) as unknown;
}

/** The text of `data` in `format`; `asTable` renders the table form (default: generic). */
export function render<P = unknown>(format: OutputFormat, data: unknown,
  asTable: (plain: P) => string = defaultTable): string {
  switch (format) {
    case 'json': return JSON.stringify(toPlain(data), null, 2);
    case 'yaml': return stringify(toPlain(data)).trimEnd();
    case 'table': return asTable(toPlain(data) as P);
  }
}

/** `P` is the JSON form of `data` (what its toJSON gives), which `asTable` renders. */
export function print<P = unknown>(format: OutputFormat, data: unknown,
  asTable?: (plain: P) => string, out: NodeJS.WritableStream = process.stdout): void {
  out.write(`${render(format, data, asTable)}\n`);
}

/** One record of a stream: JSON on one line, a YAML document, or `line` for the table. */
export function printRecord(format: OutputFormat, data: unknown, line: string,
  out: NodeJS.WritableStream = process.stdout): void {
  if (format === 'json') out.write(`${JSON.stringify(toPlain(data))}\n`);
  else if (format === 'yaml') out.write(`---\n${stringify(toPlain(data))}`);
  else out.write(`${line}\n`);
}

function trimLines(text: string): string {
  return text.split('\n').map((l) => l.trimEnd()).join('\n');
}
