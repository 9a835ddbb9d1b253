/**
 * Request validation for job specs: resolves defaults once, so nothing
 * downstream checks for zero values, and names the offending field on error.
 */
import { QosClass, Strategy, type JobSpec } from '../../proto/gen/runmesh/v1/job.js';
import type { ResolvedSpec } from './record.js';
import { parseSelector, SelectorParseError } from '../../routing/index.js';
import { ValidationError } from './errors.js';

export const LIMITS = {
  argvBytes: 128 * 1024,
  scriptBytes: 1024 * 1024,
  envEntries: 256,
  envBytes: 64 * 1024,
  timeoutSeconds: 7 * 24 * 3600,
  defaultTimeoutSeconds: 3600,
  maxAttempts: 20,
  nameChars: 256,
  keyChars: 256,
  slots: 1024,
  graceSeconds: 3600,
  defaultGraceSeconds: 10,
  priority: 1000,
} as const;

const ENV_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;
const TENANT = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

const bytes = (s: string): number => Buffer.byteLength(s, 'utf8');

function check(ok: boolean, field: string, detail: string): void {
  if (!ok) throw new ValidationError(field, detail);
}

function validateCommand(spec: JobSpec, field: string): void {
  const hasArgv = spec.argv.length > 0;
  const hasScript = spec.script.trim() !== '';
  check(hasArgv || hasScript, `${field}.argv`, 'missing command: give argv or script');
  check(!(hasArgv && hasScript), `${field}.script`, 'give argv or script, not both');
  if (hasArgv) {
    check(spec.argv[0] !== '', `${field}.argv[0]`, 'program name is empty');
    spec.argv.forEach((a, i) => check(!a.includes('\0'), `${field}.argv[${i}]`, NUL));
    const size = spec.argv.reduce((n, a) => n + bytes(a) + 1, 0);
    check(size <= LIMITS.argvBytes, `${field}.argv`, `too large (${size} bytes, limit ${LIMITS.argvBytes})`);
  }
  check(bytes(spec.script) <= LIMITS.scriptBytes, `${field}.script`, `too large (limit ${LIMITS.scriptBytes} bytes)`);
  check(!spec.script.includes('\0'), `${field}.script`, NUL);
}

/** No process can be given a NUL byte (C strings end there): refused at submit, not when the job fails to start. */
const NUL = 'contains a NUL byte, which no process can be given';

function validateEnv(env: Record<string, string>, field: string): void {
  const keys = Object.keys(env);
  check(keys.length <= LIMITS.envEntries, `${field}.env`, `too many entries (${keys.length}, limit ${LIMITS.envEntries})`);
  let size = 0;
  for (const k of keys) {
    check(ENV_KEY.test(k), `${field}.env`, `bad variable name "${k.slice(0, 64)}"`);
    check(!(env[k] ?? '').includes('\0'), `${field}.env.${k}`, NUL);
    size += bytes(k) + bytes(env[k] ?? '') + 2;
  }
  check(size <= LIMITS.envBytes, `${field}.env`, `too large (${size} bytes, limit ${LIMITS.envBytes})`);
}

function validateSelector(selector: string, field: string): void {
  try {
    parseSelector(selector);
  } catch (err) {
    if (err instanceof SelectorParseError) throw new ValidationError(`${field}.selector`, err.message);
    throw err;
  }
}

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
  validateSelector(spec.selector, field);
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
  return {
    ...spec,
    argv: [...spec.argv],
    env: { ...spec.env },
    timeoutSeconds: spec.timeoutSeconds || LIMITS.defaultTimeoutSeconds,
    maxAttempts: spec.maxAttempts || 1,
    cancelGraceSeconds: spec.cancelGraceSeconds || LIMITS.defaultGraceSeconds,
    resources: {
      slots: spec.resources?.slots || 1,
      cpuMillis: spec.resources?.cpuMillis ?? 0,
      memoryMb: spec.resources?.memoryMb ?? 0,
    },
    qos: spec.qos || QosClass.QOS_CLASS_STANDARD,
    tenant: spec.tenant || 'default',
    strategy: spec.strategy || Strategy.STRATEGY_SPREAD,
  };
}
