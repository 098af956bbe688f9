// skaffold.yaml, checked offline (no skaffold binary or cluster here): the Dockerfile and the
// dev target it builds exist, every profile's chart values render and pass the chart's schema,
// and the port-forwards name Services that the chart renders.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { ROOT } from '../support/cluster.js';
import { all, helm, type K8sObject } from './helm.js';

interface Release {
  name: string; chartPath: string; namespace: string; valuesFiles?: string[];
  setValues?: Record<string, string | number | boolean>;
  setValueTemplates?: Record<string, string>;
}
interface SkaffoldConfig {
  apiVersion: string;
  build: { artifacts: Array<{ image: string; docker: { dockerfile: string } }> };
  deploy: { helm: { releases: Release[] } };
  portForward: Array<{ resourceType: string; resourceName: string; namespace: string;
    port: number; localPort: number }>;
  profiles: Array<{ name: string; patches?: Array<{ op: string; path: string; value: unknown }>;
    deploy?: { helm: { releases: Release[] } } }>;
}

const config = parse(readFileSync(join(ROOT, 'skaffold.yaml'), 'utf8')) as SkaffoldConfig;

/** What skaffold would install for one release, with the image templates filled in. */
function renderRelease(r: Release): K8sObject[] {
  const sets = Object.entries({ ...r.setValues, 'image.repository': 'dsync', 'image.tag': 'dev' })
    .flatMap(([k, v]) => ['--set', `${k}=${String(v)}`]);
  const files = (r.valuesFiles ?? []).flatMap((f) => ['-f', join(ROOT, f)]);
  const out = helm(['template', r.name, join(ROOT, r.chartPath), '--namespace', r.namespace,
    ...files, ...sets]);
  expect(out.ok, out.stderr).toBe(true);
  const lint = helm(['lint', '--strict', join(ROOT, r.chartPath), ...files, ...sets]);
  expect(lint.ok, lint.stdout + lint.stderr).toBe(true);
  return parseAllDocuments(out.stdout).map((d) => d.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);
}

describe('skaffold.yaml', () => {
  it('builds docker/Dockerfile, and its dev profile the dev stage', () => {
    expect(config.apiVersion).toMatch(/^skaffold\/v4beta\d+$/);
    const dockerfile = config.build.artifacts[0]!.docker.dockerfile;
    expect(existsSync(join(ROOT, dockerfile))).toBe(true);
    const dev = config.profiles.find((p) => p.name === 'dev');
    expect(dev?.patches).toEqual(expect.arrayContaining([
      { op: 'add', path: '/build/artifacts/0/docker/target', value: 'dev' }]));
    expect(readFileSync(join(ROOT, dockerfile), 'utf8')).toMatch(/^FROM build AS dev$/m);
    expect(config.deploy.helm.releases[0]!.setValueTemplates?.['image.repository'])
      .toBe('{{.IMAGE_REPO_dsync}}');
  });

  const releases: Array<[string, Release]> = [
    ['default', config.deploy.helm.releases[0]!],
    ...config.profiles.map((p): [string, Release] => [p.name, p.deploy!.helm.releases[0]!]),
  ];
  for (const [name, release] of releases) {
    it(`deploys chart values that render and lint (${name})`, () => {
      const objs = renderRelease(release);
      const services = all(objs, 'Service').map((s) => s.metadata.name);
      for (const f of config.portForward) {
        expect(f.namespace).toBe(release.namespace);
        expect(services, `port-forward to ${f.resourceName}`).toContain(f.resourceName);
      }
    });
  }

  it('forwards the three services on the ports of dsync dev, and Grafana', () => {
    expect(config.portForward.map((f) => [f.resourceName, f.localPort])).toEqual([
      ['lock', 8000], ['queue', 8100], ['cache', 8200], ['dsync-grafana', 3000]]);
  });
});
