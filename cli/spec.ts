/** Turns `runmesh submit` flags and the words after `--` into a JobSpec. */
import type { Command } from 'commander';
import { ConcurrencyConflict, Executor, JobSpec, QosClass, Strategy, type CacheRef, type SecretRef } from '../proto/gen/runmesh/v1/job.js';
import { parseDuration } from './duration.js';
import { UsageError } from './errors.js';
import { collect, enumFlag, INT32_MAX, INT32_MIN, optionalWhole, parsePair, parseWhole, UINT32_MAX } from './options.js';

/** The submit flags exactly as commander hands them over: strings, repeatables as arrays. */
export interface SubmitFlags {
  name?: string;
  label?: string[];
  env?: string[];
  timeout?: string;
  retries?: string;
  /** `--retry-backoff MIN..MAX` (or one duration: a fixed wait). */
  retryBackoff?: string;
  /** `--retry-on agent_lost,exit:137` (repeatable). */
  retryOn?: string[];
  queueTimeout?: string;
  script?: string;
  idempotencyKey?: string;
  selector?: string;
  qos?: string;
  tenant?: string;
  priority?: string;
  affinity?: string;
  strategy?: string;
  slots?: string;
  cpu?: string;
  memory?: string;
  executor?: string;
  /** False with --no-network (commander's negation: true otherwise). */
  network?: boolean;
  /** `--secret NAME` or `--secret NAME=ENVVAR`. */
  secret?: string[];
  /** `--secret-file NAME=path`. */
  secretFile?: string[];
  /** `--cache KEY:PATH`. */
  cache?: string[];
  /** `--artifacts 'dist/**,report.xml'` (repeatable). */
  artifacts?: string[];
  artifactsOptional?: boolean;
  concurrencyGroup?: string;
  concurrency?: string;
  onConflict?: string;
}

/** The flags that describe a job, shared by `submit` and `schedules create`: what {@link buildSpec} reads. */
export function jobOptions(cmd: Command): Command {
  return cmd
    .option('--name <name>', 'job name shown in tables')
    .option('--label <k=v>', 'require an agent label (repeatable)', collect)
    .option('--env <K=V>', 'environment variable for the job (repeatable)', collect)
    .option('--timeout <duration>', 'wall-clock limit per attempt: 30s, 5m, 1h30m, or seconds')
    .option('--retries <n>', 'retries after a failed attempt (attempts = n + 1)')
    .option('--retry-backoff <min..max>', 'wait before each retry, doubling from min to max with jitter, e.g. 5s..5m (default 1s..60s)')
    .option(
      '--retry-on <list>',
      'retry only these failures: agent_lost, could_not_start, disk_full, exit_code, timeout, out_of_memory, artifacts, or exit:N (comma-separated, repeatable; default: every failure but cancelled, not_runnable, untrusted, artifacts)',
      collect,
    )
    .option('--queue-timeout <duration>', 'end the job timed out (queue_timeout) when no agent takes it within this long of being queued')
    .option('--script <text>', 'shell script to run with sh -e -c instead of a command')
    .option('--selector <expr>', 'label selector, e.g. "os=linux,arch in (amd64,arm64)"')
    .option('--qos <class>', 'critical | standard | batch')
    .option('--tenant <tenant>', 'tenant for fair sharing')
    .option('--priority <n>', 'higher runs first within a tenant and QoS class')
    .option('--affinity <key>', 'jobs with the same key prefer the same agent')
    .option('--strategy <name>', 'spread | binpack')
    .option('--slots <n>', 'slots needed')
    .option('--cpu <millis>', 'CPU needed, in millicores; also its limit: at most this much CPU time per second (1000 = one core)')
    .option('--memory <mb>', 'memory needed, in MB; also its hard limit: over it the job is killed (out of memory)')
    .option('--executor <name>', 'shell (default: a process on the agent) | sandbox (under bubblewrap, only on agents that offer it)')
    .option('--no-network', 'sandbox only: the job gets no network at all')
    .option('--secret <NAME[=ENVVAR]>', "a secret of the job's tenant as an environment variable (NAME, or ENVVAR) (repeatable)", collect)
    .option('--secret-file <NAME=path>', "a secret of the job's tenant as a file at path in the workspace, mode 0600 (repeatable)", collect)
    .option(
      '--cache <KEY:PATH>',
      'keep PATH (relative to the workspace) between jobs on the same agent: restored before the run, saved after exit 0; KEY is scoped by tenant (repeatable, at most 8)',
      collect,
    )
    .option(
      '--artifacts <globs>',
      'after the run, whatever its exit code, upload the workspace files matching these globs (dist/**,report.xml: * within a directory, ** across; comma-separated, repeatable, at most 32)',
      collect,
    )
    .option('--artifacts-optional', 'an artifact upload that fails leaves the job as it ended (otherwise it fails a job that succeeded)')
    .option('--concurrency-group <key>', "at most --concurrency jobs of this group (in the job's tenant) run at once")
    .option('--concurrency <n>', 'jobs of the group that may run at once (default 1, at most 1000)')
    .option(
      '--on-conflict <mode>',
      'when the group is full: queue (wait, the default) | cancel-in-progress (cancel the older jobs) | ' +
        'cancel-newest (cancel this job) | skip (do not run this job)',
    );
}

/**
 * Builds the JobSpec. Exactly one of `command` (argv) and `--script` must be
 * given; `--label k=v` flags and `--selector` are joined with commas;
 * `--retries N` means N+1 attempts. Throws {@link UsageError} on bad input.
 */
export function buildSpec(flags: SubmitFlags, command: readonly string[]): JobSpec {
  return JobSpec.fromPartial({
    name: flags.name ?? '',
    ...program(flags.script, command),
    env: envMap(flags.env ?? []),
    selector: selectorOf(flags.label ?? [], flags.selector),
    timeoutSeconds: flags.timeout === undefined ? 0 : durationFlag('--timeout', flags.timeout),
    maxAttempts: flags.retries === undefined ? 0 : attemptsFor(flags.retries),
    idempotencyKey: flags.idempotencyKey ?? '',
    resources: resourcesOf(flags),
    qos: flags.qos === undefined ? QosClass.QOS_CLASS_UNSPECIFIED : enumFlag('--qos', QosClass, 'QOS_CLASS_', flags.qos),
    tenant: flags.tenant ?? '',
    priority: optionalWhole('--priority', flags.priority, INT32_MIN, INT32_MAX) ?? 0,
    affinityKey: flags.affinity ?? '',
    strategy: flags.strategy === undefined ? Strategy.STRATEGY_UNSPECIFIED : enumFlag('--strategy', Strategy, 'STRATEGY_', flags.strategy),
    ...executorOf(flags),
    secrets: secretRefsOf(flags.secret ?? [], flags.secretFile ?? []),
    caches: (flags.cache ?? []).map(cacheRefOf),
    ...artifactsOf(flags),
    ...retryPolicyOf(flags),
    ...concurrencyOf(flags),
  });
}

/** --concurrency-group, --concurrency and --on-conflict; the last two only with a group. */
function concurrencyOf(flags: SubmitFlags): Pick<JobSpec, 'concurrencyGroup' | 'concurrency' | 'onConflict'> {
  if (flags.concurrencyGroup === undefined) {
    if (flags.concurrency !== undefined) throw new UsageError('--concurrency goes with --concurrency-group');
    if (flags.onConflict !== undefined) throw new UsageError('--on-conflict goes with --concurrency-group');
    return { concurrencyGroup: '', concurrency: undefined, onConflict: ConcurrencyConflict.CONCURRENCY_CONFLICT_UNSPECIFIED };
  }
  return {
    concurrencyGroup: flags.concurrencyGroup,
    concurrency: optionalWhole('--concurrency', flags.concurrency, 1, 1000),
    onConflict:
      flags.onConflict === undefined
        ? ConcurrencyConflict.CONCURRENCY_CONFLICT_UNSPECIFIED
        : enumFlag('--on-conflict', ConcurrencyConflict, 'CONCURRENCY_CONFLICT_', flags.onConflict),
  };
}

/** `--secret NAME` (env NAME), `--secret NAME=ENVVAR`, `--secret-file NAME=path`: references, never values. */
export function secretRefsOf(envs: readonly string[], files: readonly string[]): SecretRef[] {
  const refs = envs.map((e) => {
    const [name, env] = e.includes('=') ? parsePair('--secret', e) : [e, e];
    return { name, env, path: '' };
  });
  for (const f of files) {
    const [name, path] = parsePair('--secret-file', f);
    refs.push({ name, env: '', path });
  }
  return refs;
}

/** `--cache KEY:PATH`: split at the first colon (a path may hold one, a key's own colons must not precede it). */
function cacheRefOf(text: string): CacheRef {
  const at = text.indexOf(':');
  if (at <= 0 || at === text.length - 1) throw new UsageError(`--cache: expected KEY:PATH, got "${text}"`);
  return { key: text.slice(0, at), path: text.slice(at + 1) };
}

/** `--artifacts` (comma-separated, repeatable) and `--artifacts-optional`, which means nothing without them. */
function artifactsOf(flags: SubmitFlags): Pick<JobSpec, 'artifacts' | 'artifactsOptional'> {
  const artifacts = (flags.artifacts ?? []).flatMap((l) => l.split(',').map((s) => s.trim())).filter((s) => s !== '');
  if (flags.artifactsOptional && artifacts.length === 0) throw new UsageError('--artifacts-optional goes with --artifacts');
  return { artifacts, artifactsOptional: flags.artifactsOptional === true };
}

/** --executor, and --no-network, which only the sandbox can honour: said here rather than as the server's INVALID_ARGUMENT. */
function executorOf(flags: SubmitFlags): { executor: Executor; noNetwork: boolean } {
  const executor =
    flags.executor === undefined ? Executor.EXECUTOR_UNSPECIFIED : enumFlag<Executor>('--executor', Executor, 'EXECUTOR_', flags.executor);
  const noNetwork = flags.network === false;
  if (noNetwork && executor !== Executor.EXECUTOR_SANDBOX)
    throw new UsageError('--no-network needs --executor sandbox: the shell executor cannot cut a job off the network');
  return { executor, noNetwork };
}

function program(script: string | undefined, command: readonly string[]): { argv: string[]; script: string } {
  if (script !== undefined && command.length > 0) {
    throw new UsageError('give either a command after -- or --script, not both');
  }
  if (script !== undefined) {
    if (script.trim() === '') throw new UsageError('--script: the script is empty');
    return { argv: [], script };
  }
  if (command.length === 0) {
    throw new UsageError('nothing to run: give a command after -- (runmesh submit -- make test) or --script TEXT');
  }
  return { argv: [...command], script: '' };
}

/** --retry-backoff, --retry-on and --queue-timeout; the server checks the names in --retry-on. */
function retryPolicyOf(flags: SubmitFlags): Pick<JobSpec, 'retryBackoffMinMs' | 'retryBackoffMaxMs' | 'retryOn' | 'queueTimeoutSeconds'> {
  return {
    ...backoffOf(flags.retryBackoff),
    retryOn: (flags.retryOn ?? []).flatMap((l) => l.split(',').map((s) => s.trim())).filter((s) => s !== ''),
    queueTimeoutSeconds: flags.queueTimeout === undefined ? 0 : durationFlag('--queue-timeout', flags.queueTimeout),
  };
}

/** `--retry-backoff 5s..5m` (or `30s`, a fixed wait) as the spec's two fields; durations take `ms` too (`500ms..10s`). */
function backoffOf(text: string | undefined): { retryBackoffMinMs: number; retryBackoffMaxMs: number } {
  if (text === undefined) return { retryBackoffMinMs: 0, retryBackoffMaxMs: 0 };
  const [lo = '', hi = lo, ...rest] = text.split('..');
  if (rest.length > 0) throw new UsageError(`--retry-backoff: expected MIN..MAX, e.g. 5s..5m, got "${text}"`);
  const ms = (part: string): number => {
    const m = /^\s*(\d+)ms\s*$/.exec(part);
    return m ? Number(m[1]) : durationFlag('--retry-backoff', part) * 1000;
  };
  const [min, max] = [ms(lo), ms(hi)];
  if (min < 1 || max < min || max > 24 * 3600 * 1000) throw new UsageError(`--retry-backoff: need 0 < MIN <= MAX <= 24h, got "${text}"`);
  return { retryBackoffMinMs: min, retryBackoffMaxMs: max };
}

function durationFlag(flag: string, text: string): number {
  try {
    return parseDuration(text);
  } catch (err) {
    throw new UsageError(`${flag}: ${(err as Error).message}`, { cause: err });
  }
}

// Retries count the attempts after the first one; the wire counts them all.
function attemptsFor(retries: string): number {
  return parseWhole('--retries', retries, 0, 1000) + 1;
}

/** `--param k=v` flags as a map; a name given twice is a usage error. */
export function paramsOf(pairs: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of pairs) {
    const [k, v] = parsePair('--param', p);
    if (k in out) throw new UsageError(`--param ${k} is given twice`);
    out[k] = v;
  }
  return out;
}

function envMap(pairs: readonly string[]): Record<string, string> {
  return Object.fromEntries(pairs.map((p) => parsePair('--env', p)));
}

/** Labels first, then the free-form selector, so `--label os=linux --selector 'gpu'` → `os=linux,gpu`. */
export function selectorOf(labels: readonly string[], selector: string | undefined): string {
  const terms = labels.map((l) => parsePair('--label', l).join('='));
  if (selector !== undefined && selector.trim() !== '') terms.push(selector.trim());
  return terms.join(',');
}

function resourcesOf(flags: SubmitFlags): { slots: number; cpuMillis: number; memoryMb: number } | undefined {
  const slots = optionalWhole('--slots', flags.slots, 0, UINT32_MAX);
  const cpuMillis = optionalWhole('--cpu', flags.cpu, 0, UINT32_MAX);
  const memoryMb = optionalWhole('--memory', flags.memory, 0, UINT32_MAX);
  if (slots === undefined && cpuMillis === undefined && memoryMb === undefined) return undefined;
  return { slots: slots ?? 0, cpuMillis: cpuMillis ?? 0, memoryMb: memoryMb ?? 0 };
}
