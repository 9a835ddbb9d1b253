/**
 * What deploy/ and the Dockerfile hold, checked without a cluster or a docker
 * daemon: every YAML document under deploy/ parses; every Kubernetes object
 * validates against the API's schema (kubernetes-models, offline) and its
 * references hold (selectors, probe ports, the headless Service, ConfigMaps);
 * each container's command line and config file are accepted by the runmesh
 * command they run; the Dockerfile passes dockerfile-utils' linter and is
 * multi-stage, non-root, and copies exactly the dist folders the npm package ships.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import type { Command } from 'commander';
import { DockerfileParser, type Instruction } from 'dockerfile-ast';
import { validate as lintDockerfile } from 'dockerfile-utils';
import { DaemonSet, StatefulSet } from 'kubernetes-models/apps/v1';
import { ConfigMap, Secret, Service } from 'kubernetes-models/v1';
import { parseAllDocuments } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { buildProgram } from '../cli/program.js';
import { ROOT } from './support/processes.js';

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
}

interface Container {
  name: string;
  args?: string[];
  ports?: { name?: string; containerPort: number }[];
  readinessProbe?: { httpGet?: { path: string; port: string | number } };
  livenessProbe?: { httpGet?: { path: string; port: string | number } };
  volumeMounts?: { name: string; mountPath: string }[];
}

interface PodSpec {
  containers: Container[];
  volumes?: { name: string; configMap?: { name: string }; secret?: { secretName: string } }[];
}

/** The kinds deploy/ may hold, each validating against the API's OpenAPI schema. */
const MODELS: Record<string, Record<string, new (o: never) => { validate(): void }>> = {
  'apps/v1': { DaemonSet, StatefulSet },
  v1: { ConfigMap, Secret, Service },
};

const scratch = mkdtempSync(join(tmpdir(), 'runmesh-deploy-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

const yamlFiles = filesUnder(join(ROOT, 'deploy')).filter((f) => /\.ya?ml$/.test(f));
const objects: { file: string; object: K8sObject }[] = yamlFiles
  .filter((f) => f.includes(`${join('deploy', 'kubernetes')}/`))
  .flatMap((file) =>
    parseAllDocuments(readFileSync(file, 'utf8')).flatMap((d) => (d.contents ? [{ file, object: d.toJS() as K8sObject }] : [])),
  );
const named = (kind: string, name: string): K8sObject | undefined =>
  objects.find((o) => o.object.kind === kind && o.object.metadata.name === name)?.object;
const workloads = objects.filter((o) => o.object.kind === 'StatefulSet' || o.object.kind === 'DaemonSet').map((o) => o.object);
const podOf = (w: K8sObject): { labels: Record<string, string>; spec: PodSpec } => {
  const template = w.spec!.template as { metadata: { labels: Record<string, string> }; spec: PodSpec };
  return { labels: template.metadata.labels, spec: template.spec };
};

/** Parses a container's runmesh command line as the CLI would, its --config file from the ConfigMap mounted at its path. */
async function parseContainer(args: string[], spec: PodSpec, mounts: Container['volumeMounts']): Promise<Record<string, unknown>> {
  const program = buildProgram();
  const command: Command = program.commands.find((c) => c.name() === args[0])!;
  let flags: Record<string, unknown> = {};
  command.action((f: Record<string, unknown>) => void (flags = f));
  const local = args.map((a) => {
    const mount = mounts?.find((m) => a.startsWith(`${m.mountPath}/`));
    const map = mount && spec.volumes?.find((v) => v.name === mount.name)?.configMap;
    if (!mount || !map) return a.replace(/\$\((POD_IP)\)/, '10.0.0.7').replace(/\$\((\w+)\)/, 'pod-0');
    const path = join(scratch, `${map.name}-${relative(mount.mountPath, a).replace(/\//g, '-')}`);
    writeFileSync(path, named('ConfigMap', map.name)!.data![relative(mount.mountPath, a)]!);
    return path;
  });
  await program.parseAsync(['node', 'runmesh', ...local]);
  return flags;
}

describe('deploy/', () => {
  it('parses every YAML document', () => {
    expect(yamlFiles.length).toBeGreaterThanOrEqual(3);
    for (const file of yamlFiles)
      for (const doc of parseAllDocuments(readFileSync(file, 'utf8'))) expect(doc.errors.map((e) => `${file}: ${e.message}`)).toEqual([]);
  });

  it('has Kubernetes objects the API schema accepts', () => {
    expect(objects.map((o) => o.object.kind).sort()).toEqual(['ConfigMap', 'ConfigMap', 'DaemonSet', 'Service', 'Service', 'StatefulSet']);
    for (const { file, object } of objects) {
      const Model = MODELS[object.apiVersion]?.[object.kind];
      expect(Model, `${file}: ${object.apiVersion} ${object.kind}`).toBeDefined();
      expect(() => new Model!(object as never).validate(), `${file}: ${object.kind} ${object.metadata.name}`).not.toThrow();
    }
  });

  it('refers only to what exists: selectors, probe ports, the governing Service, ConfigMaps', () => {
    for (const w of workloads) {
      const { labels, spec } = podOf(w);
      expect(labels).toMatchObject((w.spec!.selector as { matchLabels: Record<string, string> }).matchLabels);
      for (const c of spec.containers)
        for (const probe of [c.readinessProbe, c.livenessProbe].flatMap((p) => (p?.httpGet ? [p.httpGet] : [])))
          expect(c.ports?.map((p) => p.name)).toContain(probe.port);
      for (const v of spec.volumes ?? []) if (v.configMap) expect(named('ConfigMap', v.configMap.name), v.configMap.name).toBeDefined();
    }
    const peers = workloads.find((w) => w.kind === 'StatefulSet')!;
    expect(named('Service', peers.spec!.serviceName as string)?.spec?.clusterIP).toBe('None');
    // The peers' readiness is the HTTP port's /readyz, which says whether the peer is in the mesh with its store reachable.
    expect(podOf(peers).spec.containers[0]!.readinessProbe?.httpGet?.path).toBe('/readyz');
    for (const s of objects.filter((o) => o.object.kind === 'Service').map((o) => o.object))
      expect(workloads.some((w) => Object.entries(s.spec!.selector as object).every(([k, v]) => podOf(w).labels[k] === v))).toBe(true);
  });

  it('runs command lines and config files the runmesh commands accept', async () => {
    for (const w of workloads) {
      const { spec } = podOf(w);
      for (const c of spec.containers) {
        const flags = await parseContainer(c.args!, spec, c.volumeMounts);
        expect(flags.config, `${w.kind} ${c.name}`).toBeDefined();
        if (c.args![0] === 'server')
          expect(flags).toMatchObject({ store: 'etcd://etcd:2379', listen: ['10.0.0.7:7433', '127.0.0.1:7433'] });
        else expect(flags).toMatchObject({ server: ['runmesh:7433'], workDir: '/var/lib/runmesh-agent', jobUser: 'runmesh-job' });
      }
    }
  });
});

describe('Dockerfile', () => {
  const text = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
  const dockerfile = DockerfileParser.parse(text);

  it("passes dockerfile-utils' linter", () => {
    expect(
      lintDockerfile(text).map((d) => `line ${d.range.start.line + 1}: ${typeof d.message === 'string' ? d.message : d.message.value}`),
    ).toEqual([]);
  });

  it('builds in one stage and runs from node:20-slim as a non-root user with only the runtime files', () => {
    const froms = dockerfile.getFROMs();
    expect(froms.map((f) => [f.getImageName(), f.getImageTag(), f.getBuildStage()])).toEqual([
      ['node', '20-slim', 'build'],
      ['node', '20-slim', null],
    ]);
    const finalLine = froms[1]!.getRange().start.line;
    const final = dockerfile.getInstructions().filter((i) => i.getRange().start.line > finalLine);
    const args = (keyword: string): string[] => final.filter((i) => i.getKeyword() === keyword).map((i) => i.getArgumentsContent() ?? '');
    expect(args('USER')).toHaveLength(1);
    expect(args('USER')[0]).not.toMatch(/^(root|0)(:|$)/);
    expect(args('ENTRYPOINT')).toEqual(['["node", "/opt/runmesh/bin/runmesh.js"]']);
    // The user the Kubernetes agents run jobs as (deploy/kubernetes/agents.yaml: job-user) exists in the image.
    expect(args('RUN').join('\n')).toMatch(/useradd [^&]* runmesh-job\b/);
    const copies = final.filter((i) => i.getKeyword() === 'COPY') as (Instruction & {
      getFlags(): { getName(): string; getValue(): string | null }[];
    })[];
    for (const c of copies) expect(c.getFlags().map((f) => `${f.getName()}=${f.getValue() ?? ''}`)).toEqual(['from=build']);
    // The same dist folders as the npm package's "files": the image and the package ship one thing.
    const files = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { files: string[] }).files;
    const dist = copies.map((c) => /\/src\/(dist\/\S+)/.exec(c.getArgumentsContent() ?? '')?.[1]).filter(Boolean);
    expect(dist.map((d) => `${d}/`).sort()).toEqual(files.filter((f) => f.startsWith('dist/')).sort());
  });

  it('keeps the build context small: no node_modules, dist or .git', () => {
    const ignored = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n');
    expect(ignored).toEqual(expect.arrayContaining(['node_modules', 'dist', '.git']));
  });
});
