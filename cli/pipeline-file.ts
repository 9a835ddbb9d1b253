/**
 * `runmesh submit -f FILE`: a pipeline file (README, "Pipelines") read into
 * JobSpecs. YAML (JSON is YAML too), with
 *
 * - `jobs`: name → job; a job has `script` or `command` (a list: argv),
 *   `needs`, `env`, `labels` (agent labels it requires, as --label),
 *   `selector`, `timeout`, `retries`, `allow_failure`, `qos`, `priority`,
 *   `executor`, `slots`, `cpu`, `memory` and `matrix`;
 * - `env` and `tenant` for every job of the file.
 *
 * `matrix: {os: [linux, mac], node: [20, 22]}` makes one job per
 * combination, named `test (os=linux, node=20)`, each with its values as
 * environment variables (the key upper-cased: OS=linux, NODE=20) and as
 * labels it requires (os=linux, node=20). A need naming a matrix job means
 * all of its jobs. A file with no `jobs` key is one job (its keys at the top).
 * Every error names the file, the line and the key: `ci.yaml:7: jobs.build.timeout: ...`.
 */
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node, type Pair } from 'yaml';
import { Executor, JobSpec, QosClass } from '../proto/gen/runmesh/v1/job.js';
import { parseDuration } from './duration.js';
import { UsageError } from './errors.js';
import { enumFlag, INT32_MAX, INT32_MIN, UINT32_MAX } from './options.js';

/** Jobs in one pipeline, at most (the control plane's limit). */
export const MAX_FILE_JOBS = 1000;

const JOB_KEYS = [
  'script',
  'command',
  'needs',
  'env',
  'labels',
  'selector',
  'timeout',
  'retries',
  'allow_failure',
  'matrix',
  'qos',
  'priority',
  'executor',
  'slots',
  'cpu',
  'memory',
] as const;
const FILE_KEYS = ['jobs', 'env', 'tenant'] as const;
const ENV_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;

export interface PipelineFile {
  /** In the file's order, matrix jobs expanded where they stand. */
  specs: JobSpec[];
  /** A file without `jobs`: one job, submitted as a single job. */
  single: boolean;
}

/** Where a node is, for errors. */
class Source {
  private readonly lines = new LineCounter();
  constructor(readonly file: string) {}

  parse(text: string): Node | null {
    const doc = parseDocument(text, { lineCounter: this.lines, uniqueKeys: true });
    const err = doc.errors[0];
    if (err)
      throw new UsageError(
        `${this.file}:${err.linePos?.[0].line ?? 1}: ${err.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}`,
      );
    return doc.contents;
  }

  fail(node: Node | null | undefined, path: string, detail: string): never {
    const line = node?.range ? this.lines.linePos(node.range[0]).line : 1;
    throw new UsageError(`${this.file}:${line}: ${path ? `${path}: ` : ''}${detail}`);
  }
}

/** One job of the file before expansion: its name, where it was written, its matrix. */
interface Entry {
  name: string;
  node: Node;
  path: string;
  fields: Map<string, Pair<Node, Node>>;
}

export function readPipelineFile(file: string, text: string): PipelineFile {
  const src = new Source(file);
  const parsed = src.parse(text);
  if (!isMap(parsed)) return src.fail(parsed, '', 'expected a mapping: `jobs:` (a pipeline), or the keys of one job');
  const root: Node = parsed;
  const top = fieldsOf(src, root, '');
  const single = !top.has('jobs');
  for (const [key, pair] of top)
    if (!(single ? [...JOB_KEYS, 'name', 'env', 'tenant'] : FILE_KEYS).includes(key as never))
      src.fail(
        pair.key,
        key,
        `unknown key (${single ? 'a one-job file has' : 'a pipeline file has'} ${single ? 'name, tenant and the job keys' : FILE_KEYS.join(', ')})`,
      );
  const common = { env: envOf(src, top.get('env')?.value, 'env'), tenant: str(src, top.get('tenant')?.value, 'tenant') ?? '' };
  const entries: Entry[] = single
    ? [{ name: str(src, top.get('name')?.value, 'name') ?? '', node: root, path: '', fields: top }]
    : jobEntries(src, top.get('jobs')!.value);
  for (const e of entries)
    for (const [key, pair] of e.fields)
      if (!single && !JOB_KEYS.includes(key as never))
        src.fail(pair.key, `${e.path}.${key}`, `unknown key (a job has ${JOB_KEYS.join(', ')})`);
  const expanded = entries.map((e) => ({ e, cells: matrixOf(src, e) }));
  const total = expanded.reduce((n, x) => n + x.cells.length, 0);
  if (total > MAX_FILE_JOBS) src.fail(root, '', `${total} jobs with their matrices expanded; a pipeline has at most ${MAX_FILE_JOBS}`);
  const names = new Map(expanded.map(({ e, cells }) => [e.name, cells.map((c) => cellName(e.name, c))]));
  const specs = expanded.flatMap(({ e, cells }) => cells.map((cell) => specOf(src, e, cell, common, names)));
  return { specs, single };
}

function jobEntries(src: Source, node: Node | null): Entry[] {
  if (!isMap(node) || node.items.length === 0) src.fail(node, 'jobs', 'expected a mapping of job names to jobs');
  return node.items.map((pair) => {
    const name = scalarText(pair.key);
    const path = `jobs.${name}`;
    if (name === undefined || name === '') src.fail(pair.key as Node, 'jobs', 'a job name must be a non-empty string');
    if (/[()]/.test(name))
      src.fail(pair.key as Node, path, 'a job name may not hold parentheses (matrix jobs are named "name (key=value)")');
    const value = pair.value as Node | null;
    if (!isMap(value)) src.fail(value ?? (pair.key as Node), path, 'expected a mapping: the job (script or command, needs, env...)');
    return { name, node: value, path, fields: fieldsOf(src, value, path) };
  });
}

function fieldsOf(src: Source, node: Node, path: string): Map<string, Pair<Node, Node>> {
  const out = new Map<string, Pair<Node, Node>>();
  if (!isMap(node)) return out;
  for (const pair of node.items) {
    const key = scalarText(pair.key);
    if (key === undefined) src.fail(pair.key as Node, path, 'keys are plain words');
    out.set(key, pair as Pair<Node, Node>);
  }
  return out;
}

type Cell = ReadonlyArray<[string, string]>;

/** The matrix's combinations (key, value) in the order written; one empty cell without a matrix. */
function matrixOf(src: Source, e: Entry): Cell[] {
  const node = e.fields.get('matrix')?.value;
  if (!node) return [[]];
  const path = `${e.path}.matrix`;
  if (!isMap(node) || node.items.length === 0)
    src.fail(node, path, 'expected a mapping of keys to lists of values, e.g. {os: [linux, mac]}');
  let cells: Array<Array<[string, string]>> = [[]];
  for (const pair of node.items) {
    const key = scalarText(pair.key);
    if (!key || !ENV_KEY.test(key))
      src.fail(
        pair.key as Node,
        path,
        `"${key ?? ''}" cannot be a matrix key: letters, digits and _ (it becomes ${'an environment variable'})`,
      );
    const values = pair.value as Node | null;
    if (!isSeq(values) || values.items.length === 0)
      src.fail(values ?? (pair.key as Node), `${path}.${key}`, 'expected a non-empty list of values');
    const texts = values.items.map(
      (v) => scalarText(v) ?? src.fail(v as Node, `${path}.${key}`, 'values are strings, numbers or booleans'),
    );
    cells = cells.flatMap((c) => texts.map((t): Array<[string, string]> => [...c, [key, t]]));
    if (cells.length > MAX_FILE_JOBS) src.fail(node, path, `more than ${MAX_FILE_JOBS} combinations`);
  }
  return cells;
}

const cellName = (name: string, cell: Cell): string =>
  cell.length === 0 ? name : `${name} (${cell.map(([k, v]) => `${k}=${v}`).join(', ')})`;

function specOf(
  src: Source,
  e: Entry,
  cell: Cell,
  common: { env: Record<string, string>; tenant: string },
  names: ReadonlyMap<string, string[]>,
): JobSpec {
  const f = (key: string): Node | undefined => e.fields.get(key)?.value ?? undefined;
  const at = (key: string): string => (e.path ? `${e.path}.${key}` : key);
  const env = { ...common.env, ...envOf(src, f('env'), at('env')) };
  const labels = envOf(src, f('labels'), at('labels'), false);
  for (const [key, value] of cell) {
    const envKey = key.toUpperCase();
    if (envKey in env && !(envKey in common.env)) src.fail(f('env'), at(`env.${envKey}`), `also set by the matrix (${key})`);
    if (key in labels) src.fail(f('labels'), at(`labels.${key}`), `also set by the matrix`);
    env[envKey] = value;
    labels[key] = value;
  }
  const free = str(src, f('selector'), at('selector'))?.trim();
  const selector = [...Object.entries(labels).map(([k, v]) => `${k}=${v}`), ...(free ? [free] : [])].join(',');
  return JobSpec.fromPartial({
    name: cellName(e.name, cell),
    ...commandOf(src, e, at),
    env,
    selector,
    tenant: common.tenant,
    needs: needsOf(src, f('needs'), at('needs'), e.name, names),
    allowFailure: bool(src, f('allow_failure'), at('allow_failure')) ?? false,
    timeoutSeconds: durationOf(src, f('timeout'), at('timeout')),
    maxAttempts: (() => {
      const retries = whole(src, f('retries'), at('retries'), 0, 1000);
      return retries === undefined ? 0 : retries + 1;
    })(),
    qos: enumOf(src, f('qos'), at('qos'), QosClass, 'QOS_CLASS_') ?? QosClass.QOS_CLASS_UNSPECIFIED,
    executor: enumOf(src, f('executor'), at('executor'), Executor, 'EXECUTOR_') ?? Executor.EXECUTOR_UNSPECIFIED,
    priority: whole(src, f('priority'), at('priority'), INT32_MIN, INT32_MAX) ?? 0,
    resources: {
      slots: whole(src, f('slots'), at('slots'), 0, UINT32_MAX) ?? 0,
      cpuMillis: whole(src, f('cpu'), at('cpu'), 0, UINT32_MAX) ?? 0,
      memoryMb: whole(src, f('memory'), at('memory'), 0, UINT32_MAX) ?? 0,
    },
  });
}

function commandOf(src: Source, e: Entry, at: (key: string) => string): { argv: string[]; script: string } {
  const script = e.fields.get('script')?.value ?? undefined;
  const command = e.fields.get('command')?.value ?? undefined;
  if (script && command) src.fail(command, at('command'), 'give script or command, not both');
  if (script) {
    const text = str(src, script, at('script')) ?? '';
    if (text.trim() === '') src.fail(script, at('script'), 'the script is empty');
    return { argv: [], script: text };
  }
  if (!command)
    src.fail(e.node, e.path || e.name, 'nothing to run: give script (a shell script) or command (a list: program and arguments)');
  const argv = list(src, command, at('command'));
  if (argv.length === 0 || argv[0] === '') src.fail(command, at('command'), 'expected a list: the program, then its arguments');
  return { argv, script: '' };
}

/** A need naming a matrix job means every job of it; a name not in the file is refused here, with its line. */
function needsOf(src: Source, node: Node | null | undefined, path: string, self: string, names: ReadonlyMap<string, string[]>): string[] {
  if (!node) return [];
  const wanted = isScalar(node) ? [str(src, node, path)!] : list(src, node, path);
  return wanted.flatMap((name, i) => {
    const item = isSeq(node) ? (node.items[i] as Node) : node;
    const jobs = names.get(name);
    if (!jobs) src.fail(item, `${path}[${i}]`, `no job named "${name}" in this file (jobs: ${[...names.keys()].join(', ')})`);
    if (name === self) src.fail(item, `${path}[${i}]`, 'a job cannot need itself');
    return jobs;
  });
}

function scalarText(node: unknown): string | undefined {
  if (!isScalar(node)) return undefined;
  const v = node.value;
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? String(v) : undefined;
}

function str(src: Source, node: Node | null | undefined, path: string): string | undefined {
  if (node === undefined || node === null) return undefined;
  const text = scalarText(node);
  if (text === undefined) src.fail(node, path, 'expected a string');
  return text;
}

function list(src: Source, node: Node, path: string): string[] {
  if (!isSeq(node)) src.fail(node, path, 'expected a list');
  return node.items.map((item, i) => scalarText(item) ?? src.fail(item as Node, `${path}[${i}]`, 'expected a string'));
}

/** A mapping of names to scalar values; env names must be ones a shell takes. */
function envOf(src: Source, node: Node | null | undefined, path: string, envNames = true): Record<string, string> {
  if (!node) return {};
  if (!isMap(node)) src.fail(node, path, 'expected a mapping of names to values');
  const out: Record<string, string> = {};
  for (const pair of node.items) {
    const key = scalarText(pair.key);
    if (!key || (envNames && !ENV_KEY.test(key)))
      src.fail(pair.key as Node, path, `bad name "${key ?? ''}"${envNames ? ': letters, digits and _, not starting with a digit' : ''}`);
    out[key] =
      scalarText(pair.value) ??
      src.fail((pair.value as Node) ?? (pair.key as Node), `${path}.${key}`, 'expected a string, number or boolean');
  }
  return out;
}

function bool(src: Source, node: Node | null | undefined, path: string): boolean | undefined {
  if (!node) return undefined;
  if (!isScalar(node) || typeof node.value !== 'boolean') src.fail(node, path, 'expected true or false');
  return node.value;
}

function whole(src: Source, node: Node | null | undefined, path: string, min: number, max: number): number | undefined {
  if (!node) return undefined;
  const v = isScalar(node) ? node.value : undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max)
    src.fail(node, path, `expected a whole number from ${min} to ${max}`);
  return v;
}

/** Seconds: a number, or a duration (30s, 5m, 1h30m). */
function durationOf(src: Source, node: Node | null | undefined, path: string): number {
  if (!node) return 0;
  if (isScalar(node) && typeof node.value === 'number') return whole(src, node, path, 0, UINT32_MAX)!;
  try {
    return parseDuration(str(src, node, path)!);
  } catch (err) {
    return src.fail(node, path, (err as Error).message);
  }
}

function enumOf<E extends number>(
  src: Source,
  node: Node | undefined,
  path: string,
  values: Record<string, string | number>,
  prefix: string,
): E | undefined {
  const text = str(src, node, path);
  if (text === undefined) return undefined;
  try {
    return enumFlag<E>(path, values, prefix, text);
  } catch (err) {
    return src.fail(node, '', (err as Error).message);
  }
}
