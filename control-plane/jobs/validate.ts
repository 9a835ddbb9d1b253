/**
 * Request validation for job specs: resolves defaults once, so nothing
 * downstream checks for zero values, and names the offending field on error.
 */
import { ConcurrencyConflict, Executor, QosClass, Strategy, type JobSpec } from '../../proto/gen/runmesh/v1/job.js';
import type { ResolvedSpec } from './record.js';
import { parseSelector, SelectorParseError } from '../../routing/index.js';
import { ValidationError } from './errors.js';
import { RESERVED_ENV_PREFIX, SECRET_LIMITS, SECRET_NAME } from '../secrets/names.js';
import { validateRetryPolicy } from './retry-policy.js';

/**
 * What a job may ask for: every size here is one its agent can run. Linux
 * takes one argument or environment string of at most MAX_ARG_STRLEN (128 KiB
 * with its NUL), and argv and the environment together (each string with its
 * NUL, plus a pointer to it) of at most ARG_MAX: a quarter of the stack limit,
 * 2 MiB under the usual 8 MiB. The script is not an argument: the agent
 * hands it to the shell as a file in the workspace.
 */
export const LIMITS = {
  /** One argument, without its NUL: Linux's MAX_ARG_STRLEN (32 pages) less the NUL. */
  argBytes: 128 * 1024 - 1,
  /** argv, each argument with its NUL. */
  argvBytes: 128 * 1024,
  scriptBytes: 1024 * 1024,
  envEntries: 256,
  /** The job's environment, each entry as `NAME=value` with its NUL. */
  envBytes: 64 * 1024,
  /**
   * argv and env as execve counts them (strings with their NULs, plus an
   * 8-byte pointer each): an eighth of the usual 2 MiB ARG_MAX, leaving the
   * rest for what the agent adds to the environment and for hosts with a
   * smaller stack limit.
   */
  execBytes: 256 * 1024,
  timeoutSeconds: 7 * 24 * 3600,
  defaultTimeoutSeconds: 3600,
  maxAttempts: 20,
  nameChars: 256,
  keyChars: 256,
  slots: 1024,
  graceSeconds: 3600,
  defaultGraceSeconds: 10,
  priority: 1000,
  /** Jobs of one concurrency group running at once, at most. */
  concurrency: 1000,
} as const;

const ENV_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;
const TENANT = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

const bytes = (s: string): number => Buffer.byteLength(s, 'utf8');

function check(ok: boolean, field: string, detail: string): void {
  if (!ok) throw new ValidationError(field, detail);
}

/** Bytes execve counts for these strings: each with its NUL and a pointer to it. */
const execSize = (strings: readonly string[]): number => strings.reduce((n, s) => n + bytes(s) + 1 + POINTER_BYTES, 0);
const POINTER_BYTES = 8;

function validateCommand(spec: JobSpec, field: string): void {
  const hasArgv = spec.argv.length > 0;
  const hasScript = spec.script.trim() !== '';
  check(hasArgv || hasScript, `${field}.argv`, 'missing command: give argv or script');
  check(!(hasArgv && hasScript), `${field}.script`, 'give argv or script, not both');
  if (hasArgv) {
    check(spec.argv[0] !== '', `${field}.argv[0]`, 'program name is empty');
    spec.argv.forEach((a, i) => {
      check(!a.includes('\0'), `${field}.argv[${i}]`, NUL);
      const size = bytes(a);
      check(
        size <= LIMITS.argBytes,
        `${field}.argv[${i}]`,
        `too large (${size} bytes, Linux takes one argument of at most ${LIMITS.argBytes})`,
      );
    });
    const size = spec.argv.reduce((n, a) => n + bytes(a) + 1, 0);
    check(size <= LIMITS.argvBytes, `${field}.argv`, `too large (${size} bytes, limit ${LIMITS.argvBytes})`);
  }
  const script = bytes(spec.script);
  check(script <= LIMITS.scriptBytes, `${field}.script`, `too large (${script} bytes, limit ${LIMITS.scriptBytes})`);
  check(!spec.script.includes('\0'), `${field}.script`, NUL);
}

/** No process can be given a NUL byte (C strings end there): refused at submit, not when the job fails to start. */
const NUL = 'contains a NUL byte, which no process can be given';

function validateEnv(env: Record<string, string>, field: string): void {
  const keys = Object.keys(env);
  check(keys.length <= LIMITS.envEntries, `${field}.env`, `too many entries (${keys.length}, limit ${LIMITS.envEntries})`);
  let size = 0;
  for (const k of keys) {
    // '=' ends a name in `NAME=value`, and a NUL ends the string: a name with either cannot be set.
    check(ENV_KEY.test(k), `${field}.env`, `bad variable name "${k.slice(0, 64)}": letters, digits and _, not starting with a digit`);
    check(!(env[k] ?? '').includes('\0'), `${field}.env.${k}`, NUL);
    size += bytes(k) + bytes(env[k] ?? '') + 2;
  }
  check(size <= LIMITS.envBytes, `${field}.env`, `too large (${size} bytes, limit ${LIMITS.envBytes})`);
}

/** A path inside the job's workspace: relative, without `..`, `.` or empty segments, no NUL. */
function workspacePath(path: string, field: string): void {
  check(!path.includes('\0'), field, NUL);
  check(!path.startsWith('/') && !path.split('/').some((p) => p === '..'), field, 'must be relative to the workspace, without ..');
  check(!path.split('/').some((p) => p === '' || p === '.'), field, `not a plain relative path: "${path.slice(0, 64)}"`);
}

/**
 * Secret references: names in the secrets grammar, each an env variable (not
 * one the spec's env sets, nor RUNMESH_*) or a workspace-relative path
 * without `..`, none twice. Whether each exists in the tenant is the API's
 * check (it needs the store).
 */
function validateSecretRefs(spec: JobSpec, field: string): void {
  check(
    spec.secrets.length <= SECRET_LIMITS.refsPerJob,
    `${field}.secrets`,
    `too many (${spec.secrets.length}, limit ${SECRET_LIMITS.refsPerJob})`,
  );
  const envs = new Set<string>();
  const paths = new Set<string>();
  spec.secrets.forEach((r, i) => {
    const f = `${field}.secrets[${i}]`;
    check(SECRET_NAME.test(r.name), `${f}.name`, `bad secret name "${r.name.slice(0, 64)}"`);
    check((r.env === '') !== (r.path === ''), f, 'give env or path, one of them');
    if (r.env) {
      check(ENV_KEY.test(r.env), `${f}.env`, `bad variable name "${r.env.slice(0, 64)}"`);
      check(!r.env.startsWith(RESERVED_ENV_PREFIX), `${f}.env`, `${RESERVED_ENV_PREFIX}* variables are the agent's`);
      check(!(r.env in spec.env), `${f}.env`, `${r.env} is also in env: give it one value`);
      check(!envs.has(r.env), `${f}.env`, `${r.env} is given twice`);
      envs.add(r.env);
    } else {
      check(r.path.length <= SECRET_LIMITS.pathChars, `${f}.path`, `longer than ${SECRET_LIMITS.pathChars} characters`);
      workspacePath(r.path, `${f}.path`);
      check(!paths.has(r.path), `${f}.path`, `${r.path} is given twice`);
      paths.add(r.path);
    }
  });
}

/** argv and env within the limit of one execve; each alone may fit while both together, with many short strings, do not. */
function validateExec(spec: JobSpec, field: string): void {
  const size = execSize(spec.argv) + execSize(Object.entries(spec.env).map(([k, v]) => `${k}=${v}`));
  check(
    size <= LIMITS.execBytes,
    `${field}.argv`,
    `argv and env together too large to start (${size} bytes counting a NUL and an ${POINTER_BYTES}-byte pointer per string, limit ${LIMITS.execBytes})`,
  );
}

/** A known executor; no_network only where an executor can honour it (the sandbox's own network namespace). */
function validateExecutor(spec: JobSpec, field: string): void {
  check(Executor[spec.executor] !== undefined && (spec.executor as number) >= 0, `${field}.executor`, `unknown executor ${spec.executor}`);
  check(
    !spec.noNetwork || spec.executor === Executor.EXECUTOR_SANDBOX,
    `${field}.no_network`,
    'only the sandbox executor can cut a job off the network: the shell executor cannot honour it (ask for executor sandbox)',
  );
}

function validateSelector(selector: string, field: string): void {
  try {
    parseSelector(selector);
  } catch (err) {
    if (err instanceof SelectorParseError) throw new ValidationError(`${field}.selector`, err.message);
    throw err;
  }
}

/** Letters, digits and `._:/@=+-`: room for `deploy/main`, `repo@branch`, `env=prod`. */
const GROUP = /^[A-Za-z0-9._:/@=+-]{1,128}$/;

/** A concurrency group's name, limit and conflict mode; the limit and mode only with a group. */
function validateGroup(spec: JobSpec, field: string): void {
  const group = spec.concurrencyGroup;
  check(
    group === '' || GROUP.test(group),
    `${field}.concurrency_group`,
    `bad group "${group.slice(0, 64)}": 1-128 letters, digits and ._:/@=+-`,
  );
  const limit = spec.concurrency;
  check(
    limit === undefined || (limit >= 1 && limit <= LIMITS.concurrency),
    `${field}.concurrency`,
    `${limit} is out of range: 1 to ${LIMITS.concurrency}`,
  );
  check(
    ConcurrencyConflict[spec.onConflict] !== undefined && (spec.onConflict as number) >= 0,
    `${field}.on_conflict`,
    `unknown mode ${spec.onConflict}`,
  );
  check(group !== '' || limit === undefined, `${field}.concurrency`, 'only with concurrency_group');
  check(group !== '' || !spec.onConflict, `${field}.on_conflict`, 'only with concurrency_group');
}

/** Caches a job may name; each entry is a directory the agent copies twice per run. */
export const CACHE_LIMITS = { refsPerJob: 8, pathChars: 256 } as const;
/** A cache key: the concurrency group's alphabet (`deps`, `npm:lockhash`, `repo@main`). */
const CACHE_KEY = GROUP;

/** Cache references: a key in its alphabet and a plain workspace-relative path, neither twice. */
function validateCaches(spec: JobSpec, field: string): void {
  check(
    spec.caches.length <= CACHE_LIMITS.refsPerJob,
    `${field}.caches`,
    `too many (${spec.caches.length}, limit ${CACHE_LIMITS.refsPerJob})`,
  );
  const keys = new Set<string>();
  const paths = new Set<string>();
  spec.caches.forEach((c, i) => {
    const f = `${field}.caches[${i}]`;
    check(CACHE_KEY.test(c.key), `${f}.key`, `bad cache key "${c.key.slice(0, 64)}": 1-128 letters, digits and ._:/@=+-`);
    check(!keys.has(c.key), `${f}.key`, `${c.key} is given twice`);
    keys.add(c.key);
    check(c.path !== '' && c.path.length <= CACHE_LIMITS.pathChars, `${f}.path`, `must be 1-${CACHE_LIMITS.pathChars} characters`);
    workspacePath(c.path, `${f}.path`);
    check(!paths.has(c.path), `${f}.path`, `${c.path} is given twice`);
    paths.add(c.path);
  });
}

/** Artifact globs a job may give (JobSpec.artifacts); the files' sizes are the peer's limits, checked at upload. */
export const ARTIFACT_LIMITS = { globsPerJob: 32, globChars: 256 } as const;

/**
 * Artifact globs: a plain workspace-relative path whose segments may hold
 * `*` (within a directory) or be `**` (across them), none twice. No
 * backslash: the agent's matcher would read it as an escape.
 */
function validateArtifacts(spec: JobSpec, field: string): void {
  check(
    spec.artifacts.length <= ARTIFACT_LIMITS.globsPerJob,
    `${field}.artifacts`,
    `too many (${spec.artifacts.length}, limit ${ARTIFACT_LIMITS.globsPerJob})`,
  );
  const seen = new Set<string>();
  spec.artifacts.forEach((glob, i) => {
    const f = `${field}.artifacts[${i}]`;
    check(glob !== '' && glob.length <= ARTIFACT_LIMITS.globChars, f, `must be 1-${ARTIFACT_LIMITS.globChars} characters`);
    workspacePath(glob, f);
    check(!glob.includes('\\'), f, `holds a backslash: "${glob.slice(0, 64)}" (paths are /-separated)`);
    check(!seen.has(glob), f, `${glob} is given twice`);
    seen.add(glob);
  });
}

/**
 * The affinity a cached job gets when it names none: its first cache key in
 * its tenant, so jobs sharing that cache prefer the agent the rendezvous hash
 * gives it (the one likeliest to hold it) without any agent reporting keys.
 */
export const cacheAffinity = (tenant: string, key: string): string => `cache:${tenant}:${key}`;

function range(value: number, max: number, field: string, unit = ''): void {
  check(value <= max, field, `${value}${unit} exceeds the limit of ${max}${unit}`);
}

/**
 * Returns a copy of `spec` with every default resolved: the one place defaults
 * are applied (the spec is stored like this). Throws ValidationError naming the field.
 */
export function validateSpec(spec: JobSpec | undefined, field = 'spec'): ResolvedSpec {
  if (!spec) throw new ValidationError(field, 'missing');
  validateCommand(spec, field);
  validateEnv(spec.env, field);
  validateExec(spec, field);
  validateExecutor(spec, field);
  validateSecretRefs(spec, field);
  validateSelector(spec.selector, field);
  validateRetryPolicy(spec, field);
  check(spec.name.length <= LIMITS.nameChars, `${field}.name`, `longer than ${LIMITS.nameChars} characters`);
  check(spec.idempotencyKey.length <= LIMITS.keyChars, `${field}.idempotency_key`, `longer than ${LIMITS.keyChars} characters`);
  check(spec.affinityKey.length <= LIMITS.keyChars, `${field}.affinity_key`, `longer than ${LIMITS.keyChars} characters`);
  range(spec.timeoutSeconds, LIMITS.timeoutSeconds, `${field}.timeout_seconds`, 's');
  range(spec.maxAttempts, LIMITS.maxAttempts, `${field}.max_attempts`);
  range(spec.cancelGraceSeconds, LIMITS.graceSeconds, `${field}.cancel_grace_seconds`, 's');
  range(spec.resources?.slots ?? 0, LIMITS.slots, `${field}.resources.slots`);
  check(Math.abs(spec.priority) <= LIMITS.priority, `${field}.priority`, `must be within ±${LIMITS.priority}`);
  check(spec.tenant === '' || TENANT.test(spec.tenant), `${field}.tenant`, `bad tenant name "${spec.tenant.slice(0, 64)}"`);
  check(QosClass[spec.qos] !== undefined && (spec.qos as number) >= 0, `${field}.qos`, `unknown class ${spec.qos}`);
  check(Strategy[spec.strategy] !== undefined && (spec.strategy as number) >= 0, `${field}.strategy`, `unknown strategy ${spec.strategy}`);
  validateGroup(spec, field);
  validateCaches(spec, field);
  validateArtifacts(spec, field);
  const tenant = spec.tenant || 'default';
  const firstCache = spec.caches[0];
  return {
    ...spec,
    argv: [...spec.argv],
    env: { ...spec.env },
    secrets: spec.secrets.map((r) => ({ ...r })),
    caches: spec.caches.map((c) => ({ ...c })),
    artifacts: [...spec.artifacts],
    affinityKey: spec.affinityKey || (firstCache ? cacheAffinity(tenant, firstCache.key) : ''),
    timeoutSeconds: spec.timeoutSeconds || LIMITS.defaultTimeoutSeconds,
    maxAttempts: spec.maxAttempts || 1,
    cancelGraceSeconds: spec.cancelGraceSeconds || LIMITS.defaultGraceSeconds,
    resources: {
      slots: spec.resources?.slots || 1,
      cpuMillis: spec.resources?.cpuMillis ?? 0,
      memoryMb: spec.resources?.memoryMb ?? 0,
    },
    qos: spec.qos || QosClass.QOS_CLASS_STANDARD,
    tenant,
    strategy: spec.strategy || Strategy.STRATEGY_SPREAD,
    executor: spec.executor || Executor.EXECUTOR_SHELL,
    ...(spec.concurrencyGroup && {
      concurrency: spec.concurrency ?? 1,
      onConflict: spec.onConflict || ConcurrencyConflict.CONCURRENCY_CONFLICT_QUEUE,
    }),
  };
}
