/** Templates: declarations, placeholders filled in string values only, and refusals naming the parameter, key and line. */
import { describe, expect, it } from 'vitest';
import { isValidation } from '../jobs/errors.js';
import { fillTemplate, parseTemplate } from './template.js';

const BUILD = `params:
  branch: {default: main}
  sha: {required: true, description: the commit}
name: build-\${{ params.branch }}
command: [git, checkout, "\${{ params.sha }}"]
env:
  SHA: \${{params.sha}}
  NOTE: "literal $HOME and \${{ params.branch }}/\${{ params.sha }}"
labels: {os: linux}
timeout: 30m
retries: 2
`;

/** The ValidationError message `fn` throws. */
function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(isValidation(err)).toBe(true);
    return (err as Error).message;
  }
  throw new Error('accepted');
}

describe('a job template', () => {
  const t = parseTemplate(BUILD);

  it('declares its parameters, with defaults and required ones', () => {
    expect(t.kind).toBe('job');
    expect(t.params).toEqual([
      { name: 'branch', defaultValue: 'main', hasDefault: true, required: false, description: '' },
      { name: 'sha', defaultValue: '', hasDefault: false, required: true, description: 'the commit' },
    ]);
  });

  it('fills placeholders in string values, defaults where not given', () => {
    const [spec] = fillTemplate(t, { sha: 'abc123' }, 'build').specs;
    expect(spec).toMatchObject({
      name: 'build-main',
      argv: ['git', 'checkout', 'abc123'],
      env: { SHA: 'abc123', NOTE: 'literal $HOME and main/abc123' },
      selector: 'os=linux',
      timeoutSeconds: 1800,
      maxAttempts: 3,
    });
    expect(fillTemplate(t, { sha: 'x', branch: 'dev' }, 'build').specs[0]!.name).toBe('build-dev');
  });

  it('never lets a value become YAML structure', () => {
    const evil = 'x"\n  extra: [1]\nscript: rm -rf /\n#';
    const [spec] = fillTemplate(t, { sha: evil }, 'build').specs;
    expect(spec!.argv).toEqual(['git', 'checkout', evil]);
    expect(spec!.env.SHA).toBe(evil);
    expect(spec!.script).toBe('');
  });

  it('refuses a missing required parameter and an unknown one, naming it (INVALID_ARGUMENT at the API)', () => {
    expect(refusal(() => fillTemplate(t, {}, 'build'))).toMatch(/^params\.sha: required by template build and not given/);
    expect(refusal(() => fillTemplate(t, { sha: 'x', colour: 'red' }, 'build'))).toMatch(
      /^params\.colour: template build has no parameter colour \(it declares: branch, sha\)/,
    );
  });

  it('refuses a number that a parameter made wrong when filled in, naming the key and line', () => {
    const n = parseTemplate('params: {n: {default: "2"}}\ncommand: ["true"]\nretries: ${{ params.n }}\n');
    expect(fillTemplate(n, {}, 'n').specs[0]!.maxAttempts).toBe(3);
    expect(refusal(() => fillTemplate(n, { n: 'many' }, 'n'))).toBe('text: retries: line 3: a whole number (0 or more), not "many"');
  });
});

describe('a template that cannot be stored', () => {
  it('names the undeclared parameter a placeholder uses, and its line', () => {
    expect(refusal(() => parseTemplate('command: [echo, "${{ params.nope }}"]\n'))).toBe(
      'text: command.1: line 1: ${{ params.nope }} names a parameter the template does not declare under params',
    );
  });

  it('names bad YAML, an unknown key, a bad declaration and aliases, with lines', () => {
    expect(refusal(() => parseTemplate('command: [echo\nscript: x\n'))).toMatch(/^text: line 2: /);
    expect(refusal(() => parseTemplate('command: ["true"]\ncomand: x\n'))).toMatch(/^text: comand: line 2: unknown key "comand"/);
    expect(refusal(() => parseTemplate('params:\n  a: {required: true, default: x}\ncommand: ["true"]\n'))).toBe(
      'text: params.a.required: line 2: a parameter with a default is not required',
    );
    expect(refusal(() => parseTemplate('x: &a [1]\ncommand: *a\n'))).toMatch(/anchors and aliases are not allowed/);
  });
});

describe('a pipeline template', () => {
  it('makes one spec per job, named by its key, with needs', () => {
    const t = parseTemplate(`params: {ref: {default: main}}
jobs:
  build: {script: "make REF=\${{ params.ref }}"}
  test: {command: [make, test], needs: [build], allow_failure: true}
`);
    expect(t.kind).toBe('pipeline');
    const specs = fillTemplate(t, { ref: 'v2' }, 'ci').specs;
    expect(specs.map((s) => [s.name, s.script, s.argv, s.needs, s.allowFailure])).toEqual([
      ['build', 'make REF=v2', [], [], false],
      ['test', '', ['make', 'test'], ['build'], true],
    ]);
  });

  it('expands a matrix as submit -f does: one job per combination, values as env and placeholders, needs meaning all of them', () => {
    const t = parseTemplate(`params: {node: {default: "22"}}
env: {CI: "1"}
jobs:
  test:
    command: [make, test]
    matrix: {os: [linux, mac], node: [20, "\${{ params.node }}"]}
    labels: {os: "\${{ matrix.os }}"}
  report: {script: make report, needs: [test]}
`);
    const specs = fillTemplate(t, {}, 'm').specs;
    expect(specs.map((s) => s.name)).toEqual([
      'test (os=linux, node=20)',
      'test (os=linux, node=22)',
      'test (os=mac, node=20)',
      'test (os=mac, node=22)',
      'report',
    ]);
    expect(specs[1]).toMatchObject({ env: { CI: '1', OS: 'linux', NODE: '22' }, selector: 'os=linux' });
    expect(specs[4]!.needs).toEqual(specs.slice(0, 4).map((s) => s.name));
  });
});
