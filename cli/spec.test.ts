import { describe, expect, it } from 'vitest';
import { Executor, FailureCategory, Job, JobState, QosClass, Strategy } from '../proto/gen/runmesh/v1/job.js';
import { isUsage, JobOutcomeError } from './errors.js';
import { settle } from './outcome.js';
import { buildSpec } from './spec.js';

function usageMessage(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(isUsage(err)).toBe(true);
    return (err as Error).message;
  }
  throw new Error('expected a usage error');
}

describe('buildSpec', () => {
  it('takes --executor and --no-network (commander hands over network: false), refusing --no-network without the sandbox', () => {
    expect(buildSpec({}, ['true'])).toMatchObject({ executor: Executor.EXECUTOR_UNSPECIFIED, noNetwork: false });
    expect(buildSpec({ executor: 'sandbox', network: false }, ['true'])).toMatchObject({
      executor: Executor.EXECUTOR_SANDBOX,
      noNetwork: true,
    });
    expect(buildSpec({ executor: 'SHELL', network: true }, ['true'])).toMatchObject({
      executor: Executor.EXECUTOR_SHELL,
      noNetwork: false,
    });
    expect(usageMessage(() => buildSpec({ network: false }, ['true']))).toMatch(/--no-network needs --executor sandbox/);
    expect(usageMessage(() => buildSpec({ executor: 'shell', network: false }, ['true']))).toMatch(/--no-network needs --executor sandbox/);
    expect(usageMessage(() => buildSpec({ executor: 'vm' }, ['true']))).toMatch(/--executor: unknown value "vm" \(one of shell, sandbox\)/);
  });

  it('takes argv from the words after --, with defaults left to the server', () => {
    const spec = buildSpec({}, ['make', 'test']);
    expect(spec.argv).toEqual(['make', 'test']);
    expect(spec.script).toBe('');
    expect(spec.maxAttempts).toBe(0);
    expect(spec.timeoutSeconds).toBe(0);
    expect(spec.resources).toBeUndefined();
    expect(spec.qos).toBe(QosClass.QOS_CLASS_UNSPECIFIED);
  });

  it('takes a script instead of argv, and refuses both or neither', () => {
    expect(buildSpec({ script: 'make && make test' }, []).script).toBe('make && make test');
    expect(usageMessage(() => buildSpec({ script: 'x' }, ['y']))).toMatch(/either a command after -- or --script/);
    expect(usageMessage(() => buildSpec({}, []))).toMatch(/nothing to run/);
    expect(usageMessage(() => buildSpec({ script: '  ' }, []))).toMatch(/script is empty/);
  });

  it('joins --label flags and --selector with commas, labels first', () => {
    expect(buildSpec({ label: ['os=linux', 'arch=amd64'], selector: 'gpu,!spot' }, ['x']).selector).toBe('os=linux,arch=amd64,gpu,!spot');
    expect(buildSpec({ selector: 'gpu' }, ['x']).selector).toBe('gpu');
    expect(buildSpec({ label: ['os=linux'] }, ['x']).selector).toBe('os=linux');
    expect(usageMessage(() => buildSpec({ label: ['linux'] }, ['x']))).toMatch(/--label: expected KEY=VALUE/);
  });

  it('counts --retries N as N+1 attempts', () => {
    expect(buildSpec({ retries: '0' }, ['x']).maxAttempts).toBe(1);
    expect(buildSpec({ retries: '2' }, ['x']).maxAttempts).toBe(3);
    expect(usageMessage(() => buildSpec({ retries: '-1' }, ['x']))).toMatch(/--retries: expected a whole number/);
    expect(usageMessage(() => buildSpec({ retries: 'two' }, ['x']))).toMatch(/--retries/);
  });

  it('maps the remaining flags onto the spec', () => {
    const spec = buildSpec(
      {
        name: 'build',
        env: ['A=1', 'B=x=y', 'EMPTY='],
        timeout: '1h30m',
        idempotencyKey: 'k1',
        qos: 'critical',
        tenant: 't1',
        priority: '-5',
        affinity: 'repo/a',
        strategy: 'binpack',
        slots: '2',
        cpu: '500',
        memory: '256',
      },
      ['x'],
    );
    expect(spec).toMatchObject({
      name: 'build',
      env: { A: '1', B: 'x=y', EMPTY: '' },
      timeoutSeconds: 5400,
      idempotencyKey: 'k1',
      qos: QosClass.QOS_CLASS_CRITICAL,
      tenant: 't1',
      priority: -5,
      affinityKey: 'repo/a',
      strategy: Strategy.STRATEGY_BINPACK,
      resources: { slots: 2, cpuMillis: 500, memoryMb: 0 + 256 },
    });
  });

  it('names the flag in every bad-value error', () => {
    expect(usageMessage(() => buildSpec({ timeout: '5x' }, ['x']))).toMatch(/^--timeout: invalid duration "5x"/);
    expect(usageMessage(() => buildSpec({ qos: 'urgent' }, ['x']))).toBe(
      '--qos: unknown value "urgent" (one of critical, standard, batch)',
    );
    expect(usageMessage(() => buildSpec({ strategy: 'random' }, ['x']))).toMatch(/^--strategy: unknown value/);
    expect(usageMessage(() => buildSpec({ env: ['=1'] }, ['x']))).toMatch(/^--env: expected KEY=VALUE/);
    expect(usageMessage(() => buildSpec({ cpu: '1.5' }, ['x']))).toMatch(/^--cpu:/);
  });
});

describe('settle', () => {
  const job = (patch: Parameters<typeof Job.fromPartial>[0]): Job => Job.fromPartial({ id: 'j_1', ...patch });

  function outcome(j: Job): JobOutcomeError | undefined {
    try {
      settle(j);
      return undefined;
    } catch (err) {
      expect(err).toBeInstanceOf(JobOutcomeError);
      return err as JobOutcomeError;
    }
  }

  it('passes success and exit codes through', () => {
    expect(outcome(job({ state: JobState.JOB_STATE_SUCCEEDED }))).toBeUndefined();
    const failed = outcome(job({ state: JobState.JOB_STATE_FAILED, failure: FailureCategory.FAILURE_CATEGORY_EXIT_CODE, exitCode: 3 }));
    expect(failed).toMatchObject({ exitCode: 3, report: undefined });
    const odd = outcome(job({ state: JobState.JOB_STATE_FAILED, failure: FailureCategory.FAILURE_CATEGORY_EXIT_CODE, exitCode: 300 }));
    expect(odd?.exitCode).toBe(1);
  });

  it('reports endings without an exit code in one line, exit 1', () => {
    const dead = outcome(
      job({
        state: JobState.JOB_STATE_DEAD,
        failure: FailureCategory.FAILURE_CATEGORY_AGENT_LOST,
        attempts: [{ number: 1, message: 'heartbeat missed' }],
      }),
    );
    expect(dead).toMatchObject({ exitCode: 1, report: 'job j_1 dead (agent lost: heartbeat missed)' });
    const timedOut = outcome(job({ state: JobState.JOB_STATE_TIMED_OUT, failure: FailureCategory.FAILURE_CATEGORY_TIMEOUT }));
    expect(timedOut?.report).toBe('job j_1 timed_out (timeout)');
    const cancelled = outcome(job({ state: JobState.JOB_STATE_CANCELLED, timeline: [{ reason: 'by alice' }] }));
    expect(cancelled?.report).toBe('job j_1 cancelled (by alice)');
  });
});
