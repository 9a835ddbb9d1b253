/**
 * The job spec file, the one parser for it: `runmesh submit -f` (and
 * `runmesh schedules create -f`) read it in the CLI, and stored templates are
 * read with it on the server once their `${{ params.NAME }}` placeholders are
 * filled in (control-plane/templates). One job, or a pipeline (`jobs:`, a map
 * of job name to job). A job's keys are submit's flags:
 *
 *     name: build                 # a pipeline job's name is its key
 *     command: [make, test]       # or  script: "make test && make dist"
 *     env: {CI: "1"}
 *     labels: {os: linux}         # joined with selector: os=linux,...
 *     selector: "arch in (amd64,arm64)"
 *     timeout: 30m                # or seconds
 *     retries: 2
 *     qos: batch                  # critical | standard | batch
 *     priority: 10
 *     affinity: repo-a
 *     strategy: binpack           # spread | binpack
 *     slots: 1
 *     cpu: 500                    # millicores
 *     memory: 512                 # MB
 *     executor: sandbox           # shell | sandbox
 *     needs: [build]              # pipeline jobs only (one name may stand alone)
 *     allow_failure: true
 *     artifacts: [dist/**, report.xml]   # or "dist/**,report.xml": uploaded after the run
 *     artifacts_optional: true    # an upload that fails does not fail the job
 *     matrix: {os: [linux, mac]}  # pipeline jobs only: one job per combination, ${{ matrix.os }}
 *
 * A pipeline file may also have `env` for every job, and where the caller
 * allows it (`tenant: true`: the CLI's submit) `tenant` for every job. A
 * matrix job is named `test (os=linux, node=20)`, gets each value as an
 * environment variable (the key upper-cased) and in place of each
 * `${{ matrix.KEY }}` in its string values (so `labels: {os: "${{ matrix.os }}"}`
 * sends each to agents of its os; a matrix alone requires no label), and a
 * need naming it means all of its jobs. Numbers and booleans may be
 * written as strings ("2", "true"): a template's placeholders fill strings.
 * Unknown keys and wrong types are errors naming the key path and the line
 * (YamlText). The specs are checked further (validateSpec, the pipeline
 * graph) where they are submitted.
 */
import { Executor, JobSpec, QosClass, Strategy } from '../../proto/gen/runmesh/v1/job.js';
import { YamlText, type YamlPath } from './yaml-text.js';

export interface SpecFile {
  kind: 'job' | 'pipeline';
  /** In the file's order, matrix jobs expanded where they stand. */
  specs: JobSpec[];
}

export interface SpecFileOptions {
  /**
   * Numbers, names and an empty script or program that do not pass are left
   * as they are (a template checked with sample values for its parameters).
   */
  lenientNumbers: boolean;
  /** A file-level `tenant` is taken (the CLI's submit -f); a stored template or a schedule has none. */
  tenant?: boolean;
}

const JOB_KEYS = new Set([
  'name',
  'command',
  'script',
  'env',
  'labels',
  'selector',
  'timeout',
  'retries',
  'qos',
  'priority',
  'affinity',
  'strategy',
  'slots',
  'cpu',
  'memory',
  'executor',
  'needs',
  'allow_failure',
  'artifacts',
  'artifacts_optional',
  'matrix',
]);
/** Matrix keys and env names: ones a shell takes. */
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const MAX_RETRIES = 1000;
const INT32 = 0x7fff_ffff;
const UINT32 = 0xffff_ffff;

/** One matrix combination: (key, value) pairs in the order written. */
type Cell = ReadonlyArray<readonly [string, string]>;
/** Jobs in one pipeline, at most (the control plane's limit). */
export const PIPELINE_JOBS = 1000;

/** Reads a spec file the CLI was given: errors are ValidationErrors as `FILE:LINE: key.path: ...`. */
export function readSpecFile(file: string, text: string, o: SpecFileOptions): SpecFile {
  const yaml = YamlText.parse(text, file, { file: true });
  return specsFromFile(yaml.toJS(), yaml, o);
}

/** The specs `data` (the file as plain data, placeholders filled in) describes; errors name the path and line in `yaml`. */
export function specsFromFile(data: unknown, yaml: YamlText, o: SpecFileOptions): SpecFile {
  if (!isMap(data)) return yaml.fail([], 'a map: one job (command or script, ...) or a pipeline (jobs: {NAME: job, ...})');
  const common = { env: new Fields(data, [], yaml, o).map('env', true), tenant: '' };
  if (o.tenant) common.tenant = new Fields(data, [], yaml, o).string('tenant');
  if (!('jobs' in data)) {
    const { tenant: _tenant, ...job } = data;
    return { kind: 'job', specs: [jobSpec(o.tenant ? job : data, [], yaml, o, undefined, [], { env: {}, tenant: common.tenant })] };
  }
  const fileKeys = o.tenant ? ['jobs', 'env', 'tenant'] : ['jobs', 'env'];
  const extra = Object.keys(data).find((k) => !fileKeys.includes(k));
  if (extra) yaml.fail([extra], `a pipeline file has ${fileKeys.join(', ')} only (and params); "${extra}" goes in a job`);
  const jobs = data.jobs;
  if (!isMap(jobs) || Object.keys(jobs).length === 0) yaml.fail(['jobs'], 'a map of job name to job, at least one');
  for (const n of Object.keys(jobs))
    if (n === '' || /[()]/.test(n))
      yaml.fail(['jobs', n], 'a job name is not empty and holds no parentheses (matrix jobs are named "name (key=value)")');
  const expanded = Object.keys(jobs).map((n) => ({ n, cells: matrixOf(jobs[n], ['jobs', n], yaml) }));
  const total = expanded.reduce((k, e) => k + e.cells.length, 0);
  if (total > PIPELINE_JOBS) yaml.fail(['jobs'], `${total} jobs with their matrices expanded; a pipeline has at most ${PIPELINE_JOBS}`);
  const names = new Map(expanded.map((e) => [e.n, e.cells.map((c) => cellName(e.n, c))]));
  const specs = expanded.flatMap((e) => e.cells.map((cell) => jobSpec(jobs[e.n], ['jobs', e.n], yaml, o, e.n, cell, common, names)));
  return { kind: 'pipeline', specs };
}

const cellName = (name: string, cell: Cell): string =>
  cell.length === 0 ? name : `${name} (${cell.map(([k, v]) => `${k}=${v}`).join(', ')})`;

/** A job's matrix combinations, in the order written; one empty combination without a matrix. */
function matrixOf(raw: unknown, at: YamlPath, yaml: YamlText): Cell[] {
  const m = isMap(raw) ? raw.matrix : undefined;
  if (m === undefined || m === null) return [[]];
  const path = [...at, 'matrix'];
  if (!isMap(m) || Object.keys(m).length === 0) yaml.fail(path, 'a map of keys to lists of values, e.g. {os: [linux, mac]}');
  let cells: Cell[] = [[]];
  for (const [key, values] of Object.entries(m)) {
    if (!ENV_NAME.test(key))
      yaml.fail([...path, key], `"${key}" cannot be a matrix key: letters, digits and _ (it becomes an environment variable)`);
    if (!Array.isArray(values) || values.length === 0 || values.some((v) => v === null || typeof v === 'object'))
      yaml.fail([...path, key], 'a non-empty list of values: strings, numbers or booleans');
    cells = cells.flatMap((c) => (values as unknown[]).map((v): Cell => [...c, [key, String(v as string)]]));
    if (cells.length > PIPELINE_JOBS) yaml.fail(path, `more than ${PIPELINE_JOBS} combinations`);
  }
  return cells;
}

function jobSpec(
  given: unknown,
  at: YamlPath,
  yaml: YamlText,
  o: SpecFileOptions,
  key: string | undefined,
  cell: Cell,
  common: { env: Record<string, string>; tenant: string },
  names?: ReadonlyMap<string, string[]>,
): JobSpec {
  if (!isMap(given)) return yaml.fail(at, 'a job: a map with command or script');
  const raw = withMatrix(given, at, yaml, cell);
  const f = new Fields(raw, at, yaml, o);
  const unknown = Object.keys(raw).find((k) => !JOB_KEYS.has(k));
  if (unknown) yaml.fail([...at, unknown], `unknown key "${unknown}" (${[...JOB_KEYS].join(', ')})`);
  if (key !== undefined && raw.name !== undefined) yaml.fail([...at, 'name'], 'a pipeline job is named by its key under jobs');
  if (key === undefined && raw.needs !== undefined) yaml.fail([...at, 'needs'], 'needs names jobs of a pipeline (jobs: {...})');
  if (key === undefined && raw.matrix !== undefined) yaml.fail([...at, 'matrix'], 'a matrix makes jobs of a pipeline (jobs: {...})');
  const env = { ...common.env, ...f.map('env', true) };
  const labels = f.map('labels');
  for (const [k, v] of cell) {
    if (k.toUpperCase() in env && !(k.toUpperCase() in common.env))
      yaml.fail([...at, 'env', k.toUpperCase()], `also set by the matrix (${k})`);
    env[k.toUpperCase()] = v;
  }
  const selector = [...Object.entries(labels).map(([k, v]) => `${k}=${v}`), f.string('selector').trim()].filter((t) => t !== '').join(',');
  const retries = f.whole('retries', 0, MAX_RETRIES);
  return JobSpec.fromPartial({
    name: key === undefined ? f.string('name') : cellName(key, cell),
    ...f.command(),
    env,
    selector,
    tenant: common.tenant,
    timeoutSeconds: f.duration('timeout'),
    maxAttempts: raw.retries === undefined || raw.retries === null ? 0 : retries + 1,
    qos: f.choice('qos', QosClass, 'QOS_CLASS_'),
    priority: f.whole('priority', -INT32 - 1, INT32),
    affinityKey: f.string('affinity'),
    strategy: f.choice('strategy', Strategy, 'STRATEGY_'),
    resources: { slots: f.whole('slots'), cpuMillis: f.whole('cpu'), memoryMb: f.whole('memory') },
    executor: f.choice('executor', Executor, 'EXECUTOR_'),
    needs: f.needs().flatMap((n, i) => {
      const jobs = names?.get(n);
      if (!jobs) return yaml.fail(f.needPath(i), `no job named "${n.slice(0, 64)}" in this file`);
      if (n === key) return yaml.fail(f.needPath(i), 'a job cannot need itself');
      return jobs;
    }),
    allowFailure: f.bool('allow_failure'),
    artifacts: f.commaList('artifacts'),
    artifactsOptional: f.bool('artifacts_optional'),
  });
}

/** `${{ matrix.KEY }}`: the job's value of a matrix key, in any string value of the job. */
const MATRIX_PLACEHOLDER = /\$\{\{\s*matrix\.([A-Za-z0-9_-]*)\s*\}\}/g;

/**
 * The job with each `${{ matrix.KEY }}` in its string values (not in
 * `matrix` or `needs`) replaced by this combination's value, after parsing,
 * so a value never becomes YAML structure. One naming a key the job's matrix
 * does not have is refused, naming where.
 */
function withMatrix(raw: Record<string, unknown>, at: YamlPath, yaml: YamlText, cell: Cell): Record<string, unknown> {
  const values = new Map(cell);
  const fill = (v: unknown, path: YamlPath): unknown => {
    if (typeof v === 'string')
      return v.replace(MATRIX_PLACEHOLDER, (_m, key: string) => {
        const value = values.get(key);
        if (value === undefined)
          yaml.fail(
            path,
            cell.length === 0 ? `\${{ matrix.${key} }}: this job has no matrix` : `\${{ matrix.${key} }}: no such key in this job's matrix`,
          );
        return value;
      });
    if (Array.isArray(v)) return v.map((item, i) => fill(item, [...path, i]));
    if (isMap(v)) return Object.fromEntries(Object.entries(v).map(([k, item]) => [k, fill(item, [...path, k])]));
    return v;
  };
  return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, k === 'matrix' || k === 'needs' ? v : fill(v, [...at, k])]));
}

/** Typed reads of one job's keys; a wrong type fails naming the key's path and line. */
class Fields {
  constructor(
    private readonly raw: Record<string, unknown>,
    private readonly at: YamlPath,
    private readonly yaml: YamlText,
    private readonly o: SpecFileOptions,
  ) {}

  private fail(key: string, detail: string): never {
    return this.yaml.fail([...this.at, key], detail);
  }

  /** A scalar's text; undefined when absent. */
  private scalar(key: string, what: string): string | undefined {
    const v = this.raw[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'string') return v;
    if (typeof v === 'number' || typeof v === 'boolean') return String(v);
    return this.fail(key, what);
  }

  string(key: string): string {
    return this.scalar(key, 'a string') ?? '';
  }

  /** `script`, or `command` (a list: the program, then its arguments): one of them. */
  command(): { argv: string[]; script: string } {
    const has = (k: string): boolean => this.raw[k] !== undefined && this.raw[k] !== null;
    if (has('script') && has('command')) this.fail('command', 'give script or command, not both');
    if (!has('script') && !has('command'))
      return this.yaml.fail(this.at, 'nothing to run: give script (a shell script) or command (a list: program and arguments)');
    const script = this.string('script');
    const argv = this.strings('command');
    if (!this.o.lenientNumbers && has('script') && script.trim() === '') this.fail('script', 'the script is empty');
    if (!this.o.lenientNumbers && has('command') && (argv.length === 0 || argv[0] === ''))
      this.fail('command', 'a list: the program, then its arguments');
    return { argv, script };
  }

  /** `needs`: a list of job names, or one name. */
  needs(): string[] {
    const v = this.raw.needs;
    return typeof v === 'string' ? [v] : this.strings('needs');
  }

  /** Where the i-th need is written, for errors. */
  needPath(i: number): YamlPath {
    return typeof this.raw.needs === 'string' ? [...this.at, 'needs'] : [...this.at, 'needs', i];
  }

  /** A list of strings, or one string of comma-separated items (`artifacts: "dist/**,report.xml"`); empty items dropped. */
  commaList(key: string): string[] {
    const v = this.raw[key];
    if (v !== undefined && v !== null && typeof v !== 'string' && (!Array.isArray(v) || v.some((x) => x === null || typeof x === 'object')))
      this.fail(key, 'a list of strings, or one string of comma-separated items');
    const items = typeof v === 'string' ? v.split(',') : this.strings(key);
    return items.map((s) => s.trim()).filter((s) => s !== '');
  }

  strings(key: string): string[] {
    const v = this.raw[key];
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v) || v.some((x) => x === null || typeof x === 'object'))
      this.fail(key, `a list of strings, e.g. ${key}: [make, test]`);
    return (v as unknown[]).map(String);
  }

  /** A map of names to scalars; `envNames`: names a shell takes. */
  map(key: string, envNames = false): Record<string, string> {
    const v = this.raw[key];
    if (v === undefined || v === null) return {};
    if (!isMap(v) || Object.values(v).some((x) => x === null || typeof x === 'object')) this.fail(key, 'a map of names to strings');
    const bad = Object.keys(v).find((k) => k === '' || (envNames && !ENV_NAME.test(k)));
    if (bad !== undefined) this.fail(key, `bad name "${bad.slice(0, 64)}": letters, digits and _, not starting with a digit`);
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, String(x)]));
  }

  bool(key: string): boolean {
    const v = this.raw[key];
    if (v === undefined || v === null) return false;
    if (typeof v === 'boolean') return v;
    if (v === 'true' || v === 'false') return v === 'true';
    return this.fail(key, 'true or false');
  }

  /** A whole number from `min` to `max`, written as a number or a string of digits. */
  whole(key: string, min = 0, max = UINT32): number {
    const v = this.raw[key];
    if (v === undefined || v === null) return 0;
    const n = typeof v === 'number' ? v : typeof v === 'string' && /^-?\d+$/.test(v.trim()) ? Number(v) : NaN;
    if (Number.isSafeInteger(n) && n >= min && n <= max) return n;
    if (this.o.lenientNumbers) return 0;
    const range = Number.isSafeInteger(n) ? ` from ${min} to ${max}` : min === 0 ? ' (0 or more)' : '';
    return this.fail(key, `a whole number${range}, not ${JSON.stringify(v).slice(0, 40)}`);
  }

  /** Seconds: a number, or 30s, 5m, 1h30m, 7d. */
  duration(key: string): number {
    const text = this.scalar(key, 'a duration')?.trim();
    if (text === undefined) return 0;
    if (/^\d+$/.test(text)) return this.whole(key);
    const m = /^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(text.toLowerCase());
    const s = m && text !== '' ? Number(m[1] ?? 0) * 86_400 + Number(m[2] ?? 0) * 3600 + Number(m[3] ?? 0) * 60 + Number(m[4] ?? 0) : NaN;
    if (Number.isSafeInteger(s) && s <= UINT32) return s;
    return this.o.lenientNumbers
      ? 0
      : this.fail(key, `invalid duration ${JSON.stringify(text).slice(0, 40)} (use e.g. 90, 30s, 5m, 1h30m, 7d)`);
  }

  /** An enum value by its lower-case short name (`batch` for QOS_CLASS_BATCH). */
  choice<E extends number>(key: string, values: Record<string, string | number>, prefix: string): E {
    const v = this.scalar(key, 'a name');
    if (v === undefined || v === '') return 0 as E;
    const n = values[`${prefix}${v.toUpperCase().replace(/-/g, '_')}`];
    if (typeof n === 'number' && n > 0) return n as E;
    const names = Object.keys(values)
      .filter((k) => k.startsWith(prefix) && !k.endsWith('UNSPECIFIED'))
      .map((k) => k.slice(prefix.length).toLowerCase());
    return this.o.lenientNumbers ? (0 as E) : this.fail(key, `one of ${names.join(', ')}, not ${JSON.stringify(v).slice(0, 40)}`);
  }
}

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
