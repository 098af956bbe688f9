// helm from tests: fetched once into .tools/bin by scripts/k8s-tools.sh, run offline
// (`helm lint`, `helm template`), with the rendered objects parsed and validated against the
// Kubernetes schemas of kubernetes-models (and the Prometheus Operator's CRD models).
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ROOT } from '../support/cluster.js';

export const CHART = join(ROOT, 'helm', 'dsync');
export const EXAMPLES = join(ROOT, 'helm', 'examples');
export const NAMESPACE = 'dsync-test';
const HELM = join(ROOT, '.tools', 'bin', 'helm');
const HELM_CALL_MS = 60_000;

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string>;
    annotations?: Record<string, string> };
  [field: string]: unknown;
}

let fetched = false;

/** Path of helm, fetched on first use (seconds; a no-op once the tools are there). */
export function helmPath(): string {
  if (!fetched) {
    execFileSync('bash', [join(ROOT, 'scripts', 'k8s-tools.sh')], { stdio: 'inherit',
      timeout: 300_000 });
    fetched = true;
  }
  return HELM;
}

export interface HelmRun { readonly ok: boolean; readonly stdout: string; readonly stderr: string }

export function helm(args: readonly string[]): HelmRun {
  const r = spawnSync(helmPath(), [...args], { encoding: 'utf8', timeout: HELM_CALL_MS,
    maxBuffer: 64 << 20 });
  if (r.error !== undefined) throw r.error;
  return { ok: r.status === 0, stdout: r.stdout, stderr: r.stderr };
}

/** `--set`s and value files, as helm arguments. */
export function valueArgs(files: readonly string[] = [], sets: readonly string[] = []): string[] {
  return [...files.flatMap((f) => ['-f', join(EXAMPLES, f)]), ...sets.flatMap((s) => ['--set', s])];
}

/** helm template; throws with helm's message when rendering fails. */
export function render(files: readonly string[] = [], sets: readonly string[] = []): K8sObject[] {
  const r = renderRaw(files, sets);
  if (!r.ok) throw new Error(`helm template failed: ${r.stderr.trim()}`);
  return parseAllDocuments(r.stdout).map((d) => d.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);
}

export function renderRaw(files: readonly string[] = [], sets: readonly string[] = []): HelmRun {
  return helm(['template', 'dsync', CHART, '--namespace', NAMESPACE, ...valueArgs(files, sets)]);
}

export function find(objs: readonly K8sObject[], kind: string, name: string): K8sObject {
  const o = objs.find((x) => x.kind === kind && x.metadata.name === name);
  if (o === undefined) {
    throw new Error(`no ${kind} ${name} in: ${objs.map((x) => `${x.kind}/${x.metadata.name}`)}`);
  }
  return o;
}

export function all(objs: readonly K8sObject[], kind: string): K8sObject[] {
  return objs.filter((x) => x.kind === kind);
}

type Model = new (data: unknown) => { validate(): void };

/** The kubernetes-models class of an object's apiVersion and kind. */
async function modelOf(o: K8sObject): Promise<Model> {
  const [group, version] = o.apiVersion.includes('/') ? o.apiVersion.split('/') as [string, string]
    : ['', o.apiVersion];
  const module = group === 'monitoring.coreos.com'
    ? `@kubernetes-models/prometheus-operator/${group}/${version}`
    : group === '' ? `kubernetes-models/${version}` : `kubernetes-models/${group}/${version}`;
  const mod = await import(module) as Record<string, Model | undefined>;
  const model = mod[o.kind];
  if (model === undefined) throw new Error(`no schema for ${o.apiVersion} ${o.kind}`);
  return model;
}

/** Validates every object; returns "Kind/name: error" for each invalid one. */
export async function invalidObjects(objs: readonly K8sObject[]): Promise<string[]> {
  const problems: string[] = [];
  for (const o of objs) {
    try {
      new (await modelOf(o))(o).validate();
    } catch (err) {
      problems.push(`${o.kind}/${o.metadata.name}: ${(err as Error).message}`);
    }
  }
  return problems;
}
