import { describe, expect, it } from 'vitest';
import { QosClass } from '../proto/gen/runmesh/v1/job.js';
import { readPipelineFile } from './pipeline-file.js';

const read = (text: string): ReturnType<typeof readPipelineFile> => readPipelineFile('ci.yaml', text);
const refusal = (text: string): string => {
  try {
    read(text);
  } catch (err) {
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
    command: [npm, test]
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
    const { specs, single } = read(PIPELINE);
    expect(single).toBe(false);
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
    expect(test).toMatchObject({ argv: ['npm', 'test'], needs: ['build'], selector: 'os=linux,node=20' });
    expect(test!.env).toEqual({ CI: '1', NODE_ENV: 'test', OS: 'linux', NODE: '20' });
    expect(deploy!.needs).toEqual(specs.slice(1, 5).map((s) => s.name));
    expect(deploy).toMatchObject({ selector: '!spot', allowFailure: true, qos: QosClass.QOS_CLASS_CRITICAL });
  });

  it('takes one job at the top level', () => {
    const { specs, single } = read('name: lint\nscript: npm run lint\nenv: {A: b}\n');
    expect(single).toBe(true);
    expect(specs).toHaveLength(1);
    expect(specs[0]).toMatchObject({ name: 'lint', script: 'npm run lint', env: { A: 'b' } });
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
      'ci.yaml:4: jobs.a.matrix.os: expected a non-empty list of values',
    );
    expect(refusal('jobs:\n  a:\n    script: x\n    retries: -1\n')).toBe(
      'ci.yaml:4: jobs.a.retries: expected a whole number from 0 to 1000',
    );
    expect(refusal('jobs:\n  a:\n    script: x\n  a:\n    script: y\n')).toMatch(/^ci\.yaml:4: Map keys must be unique/);
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
