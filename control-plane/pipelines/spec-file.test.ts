/** The job spec file, as submit -f reads it (a file, a file-level tenant taken) and as templates are read (a request field, no tenant). */
import { describe, expect, it } from 'vitest';
import { QosClass, Strategy } from '../../proto/gen/runmesh/v1/job.js';
import { isValidation } from '../jobs/errors.js';
import { readSpecFile, specsFromFile, type SpecFileOptions } from './spec-file.js';
import { YamlText } from './yaml-text.js';

const read = (text: string): ReturnType<typeof readSpecFile> => readSpecFile('ci.yaml', text, { lenientNumbers: false, tenant: true });
/** As the server reads a template's text (the request field `text`), placeholders already filled in. */
const readField = (text: string, o: SpecFileOptions = { lenientNumbers: false }): ReturnType<typeof specsFromFile> => {
  const yaml = YamlText.parse(text, 'text');
  return specsFromFile(yaml.toJS(), yaml, o);
};
const refusal = (text: string, parse: (text: string) => unknown = read): string => {
  try {
    parse(text);
  } catch (err) {
    expect(isValidation(err)).toBe(true);
    return (err as Error).message;
  }
  return 'accepted';
};

const PIPELINE = `
env:
  CI: "1"
tenant: team-a
jobs:
  build:
    script: make build
    labels: {arch: amd64}
    timeout: 10m
    retries: 2
  test:
    needs: [build]
    matrix:
      os: [linux, mac]
      node: [20, 22]
    labels: {os: "\${{ matrix.os }}"}
    command: [npm, test, "--node=\${{matrix.node}}"]
    env: {NODE_ENV: test}
  deploy:
    needs: test
    command: [./deploy.sh]
    selector: "!spot"
    allow_failure: true
    qos: critical
`;

describe('a pipeline file', () => {
  it('reads jobs, needs, env, labels, selectors, timeouts and retries', () => {
    const { specs, kind } = read(PIPELINE);
    expect(kind).toBe('pipeline');
    expect(specs.map((s) => s.name)).toEqual([
      'build',
      'test (os=linux, node=20)',
      'test (os=linux, node=22)',
      'test (os=mac, node=20)',
      'test (os=mac, node=22)',
      'deploy',
    ]);
    const [build, test, , , , deploy] = specs;
    expect(build).toMatchObject({
      script: 'make build',
      selector: 'arch=amd64',
      timeoutSeconds: 600,
      maxAttempts: 3,
      tenant: 'team-a',
      env: { CI: '1' },
    });
    // A matrix value fills its placeholders; it is a required label only where a job's labels name it.
    expect(test).toMatchObject({ argv: ['npm', 'test', '--node=20'], needs: ['build'], selector: 'os=linux' });
    expect(test!.env).toEqual({ CI: '1', NODE_ENV: 'test', OS: 'linux', NODE: '20' });
    expect(deploy!.needs).toEqual(specs.slice(1, 5).map((s) => s.name));
    expect(deploy).toMatchObject({ selector: '!spot', allowFailure: true, qos: QosClass.QOS_CLASS_CRITICAL });
  });

  it('takes one job at the top level', () => {
    const { specs, kind } = read('name: lint\nscript: npm run lint\nenv: {A: b}\n');
    expect(kind).toBe('job');
    expect(specs).toHaveLength(1);
    expect(specs[0]).toMatchObject({ name: 'lint', script: 'npm run lint', env: { A: 'b' } });
  });

  it('takes artifacts as a list or a comma-separated string, and artifacts_optional', () => {
    expect(read('script: x\nartifacts: [dist/**, report.xml]\n').specs[0]).toMatchObject({
      artifacts: ['dist/**', 'report.xml'],
      artifactsOptional: false,
    });
    expect(read('script: x\nartifacts: "dist/**, report.xml,"\nartifacts_optional: true\n').specs[0]).toMatchObject({
      artifacts: ['dist/**', 'report.xml'],
      artifactsOptional: true,
    });
    expect(refusal('script: x\nartifacts: {a: b}\n')).toBe(
      'ci.yaml:2: artifacts: a list of strings, or one string of comma-separated items',
    );
    expect(refusal('script: x\nartifacts_optional: maybe\n')).toBe('ci.yaml:2: artifacts_optional: true or false');
  });

  it('names the line and the key of what it refuses', () => {
    expect(refusal('jobs:\n  build:\n    script: make\n    timeout: soon\n')).toBe(
      'ci.yaml:4: jobs.build.timeout: invalid duration "soon" (use e.g. 90, 30s, 5m, 1h30m, 7d)',
    );
    expect(refusal('jobs:\n  build:\n    script: make\n    scirpt: make\n')).toMatch(/^ci\.yaml:4: jobs\.build\.scirpt: unknown key/);
    expect(refusal('jobs:\n  a:\n    script: x\n  b:\n    script: y\n    needs: [a, c]\n')).toMatch(
      /^ci\.yaml:6: jobs\.b\.needs\[1\]: no job named "c" in this file/,
    );
    expect(refusal('jobs:\n  a:\n    needs: [b]\n')).toMatch(/^ci\.yaml:3: jobs\.a: nothing to run/);
    expect(refusal('jobs:\n  a:\n    script: x\n    matrix: {os: []}\n')).toBe(
      'ci.yaml:4: jobs.a.matrix.os: a non-empty list of values: strings, numbers or booleans',
    );
    expect(refusal('jobs:\n  a:\n    script: x\n    retries: -1\n')).toBe(
      'ci.yaml:4: jobs.a.retries: a whole number from 0 to 1000, not -1',
    );
    expect(refusal('jobs:\n  a:\n    script: x\n    needs: a\n')).toBe('ci.yaml:4: jobs.a.needs: a job cannot need itself');
    expect(refusal('jobs:\n  a (x):\n    script: x\n')).toMatch(
      /^ci\.yaml:3: jobs\.a \(x\): a job name is not empty and holds no parentheses/,
    );
    expect(refusal('script: x\nneeds: [b]\n')).toBe('ci.yaml:2: needs: needs names jobs of a pipeline (jobs: {...})');
    expect(refusal('script: x\nenv: {1A: b}\n')).toMatch(/^ci\.yaml:2: env: bad name "1A"/);
    expect(refusal('jobs:\n  a:\n    script: x\n  a:\n    script: y\n')).toMatch(/^ci\.yaml:4: Map keys must be unique/);
    expect(refusal('jobs:\n  a:\n    script: echo ${{ matrix.os }}\n')).toBe(
      'ci.yaml:3: jobs.a.script: ${{ matrix.os }}: this job has no matrix',
    );
    expect(refusal('jobs:\n  a:\n    script: x\n    matrix: {os: [l]}\n    labels: {arch: "${{ matrix.arch }}"}\n')).toBe(
      "ci.yaml:5: jobs.a.labels.arch: ${{ matrix.arch }}: no such key in this job's matrix",
    );
    expect(refusal('jobs:\n  a:\n    script: x\n    env: {OS: x}\n    matrix: {os: [l]}\n')).toBe(
      'ci.yaml:4: jobs.a.env.OS: also set by the matrix (os)',
    );
  });

  it('refuses a matrix that expands past the pipeline limit', () => {
    const values = `[${Array.from({ length: 40 }, (_, i) => i).join(', ')}]`;
    expect(refusal(`jobs:\n  a:\n    script: x\n    matrix:\n      x: ${values}\n      y: ${values}\n`)).toBe(
      'ci.yaml:5: jobs.a.matrix: more than 1000 combinations',
    );
  });
});

describe('the spec file as a template is read', () => {
  it('takes affinity, strategy, and numbers and booleans written as strings', () => {
    const [spec] = readField(
      'command: ["true"]\naffinity: repo-a\nstrategy: binpack\nretries: "2"\ncpu: "500"\nallow_failure: "true"\n',
    ).specs;
    expect(spec).toMatchObject({
      affinityKey: 'repo-a',
      strategy: Strategy.STRATEGY_BINPACK,
      maxAttempts: 3,
      resources: { cpuMillis: 500 },
      allowFailure: true,
    });
  });

  it('refuses a file-level tenant unless the caller takes one, naming the request field, key and line', () => {
    expect(refusal('tenant: a\njobs:\n  b: {script: x}\n', readField)).toBe(
      'text: tenant: line 1: a pipeline file has jobs, env only (and params); "tenant" goes in a job',
    );
    expect(refusal('tenant: a\nscript: x\n', readField)).toMatch(/^text: tenant: line 1: unknown key "tenant"/);
    expect(refusal('jobs:\n  a: {command: ["true"], needs: [b]}\n', readField)).toBe(
      'text: jobs.a.needs.0: line 2: no job named "b" in this file',
    );
  });

  it('leaves numbers, names and an empty script at their defaults when lenient (a template checked with samples)', () => {
    const [spec] = readField('script: ""\nretries: many\nqos: fast\ntimeout: soon\n', { lenientNumbers: true }).specs;
    expect(spec).toMatchObject({ script: '', maxAttempts: 1, qos: QosClass.QOS_CLASS_UNSPECIFIED, timeoutSeconds: 0 });
    expect(refusal('script: ""\n', readField)).toBe('text: script: line 1: the script is empty');
  });
});
