/** Turns `runmesh submit` flags and the words after `--` into a JobSpec. */
import { Executor, JobSpec, QosClass, Strategy, type SecretRef } from '../proto/gen/runmesh/v1/job.js';
import { parseDuration } from './duration.js';
import { UsageError } from './errors.js';
import { enumFlag, INT32_MAX, INT32_MIN, optionalWhole, parsePair, parseWhole, UINT32_MAX } from './options.js';

/** The submit flags exactly as commander hands them over: strings, repeatables as arrays. */
export interface SubmitFlags {
  name?: string;
  label?: string[];
  env?: string[];
  timeout?: string;
  retries?: string;
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
    timeoutSeconds: flags.timeout === undefined ? 0 : parseTimeout(flags.timeout),
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
  });
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

// Retries count the attempts after the first one; the wire counts them all.
function attemptsFor(retries: string): number {
  return parseWhole('--retries', retries, 0, 1000) + 1;
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

function parseTimeout(text: string): number {
  try {
    return parseDuration(text);
  } catch (err) {
    throw new UsageError(`--timeout: ${(err as Error).message}`, { cause: err });
  }
}

function resourcesOf(flags: SubmitFlags): { slots: number; cpuMillis: number; memoryMb: number } | undefined {
  const slots = optionalWhole('--slots', flags.slots, 0, UINT32_MAX);
  const cpuMillis = optionalWhole('--cpu', flags.cpu, 0, UINT32_MAX);
  const memoryMb = optionalWhole('--memory', flags.memory, 0, UINT32_MAX);
  if (slots === undefined && cpuMillis === undefined && memoryMb === undefined) return undefined;
  return { slots: slots ?? 0, cpuMillis: cpuMillis ?? 0, memoryMb: memoryMb ?? 0 };
}
