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

  it('takes --artifacts comma-separated and repeated, and --artifacts-optional only with them', () => {
    expect(buildSpec({ artifacts: ['dist/**, report.xml', 'out/*.log,'] }, ['x'])).toMatchObject({
      artifacts: ['dist/**', 'report.xml', 'out/*.log'],
      artifactsOptional: false,
    });
    expect(buildSpec({ artifacts: ['a'], artifactsOptional: true }, ['x']).artifactsOptional).toBe(true);
    expect(usageMessage(() => buildSpec({ artifactsOptional: true }, ['x']))).toBe('--artifacts-optional goes with --artifacts');
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

  it('reports endings without an exit code in one line, each kind with an exit code of its own', () => {
    const end = (patch: Parameters<typeof Job.fromPartial>[0]): [number, string | undefined] | undefined => {
      const err = outcome(job(patch));
      return err && [err.exitCode, err.report];
    };
    const F = FailureCategory;
    expect(
      end({
        state: JobState.JOB_STATE_DEAD,
        failure: F.FAILURE_CATEGORY_AGENT_LOST,
        attempts: [{ number: 1, message: 'heartbeat missed' }],
      }),
    ).toEqual([125, 'job j_1 dead (agent lost: heartbeat missed)']);
    expect(end({ state: JobState.JOB_STATE_TIMED_OUT, failure: F.FAILURE_CATEGORY_TIMEOUT })).toEqual([124, 'job j_1 timed_out']);
    expect(end({ state: JobState.JOB_STATE_CANCELLED, timeline: [{ reason: 'by alice' }] })).toEqual([130, 'job j_1 cancelled (by alice)']);
    // The agent reports a cancelled attempt as "cancelled: <reason>"; the state says it once.
    expect(
      end({
        state: JobState.JOB_STATE_CANCELLED,
        failure: F.FAILURE_CATEGORY_CANCELLED,
        attempts: [{ number: 1, message: 'cancelled: by alice' }],
      }),
    ).toEqual([130, 'job j_1 cancelled (by alice)']);
    expect(end({ state: JobState.JOB_STATE_CANCELLED, timeline: [{ reason: 'cancelled' }] })).toEqual([130, 'job j_1 cancelled']);
    expect(
      end({ state: JobState.JOB_STATE_FAILED, failure: F.FAILURE_CATEGORY_COULD_NOT_START, attempts: [{ number: 1, message: 'no sh' }] }),
    ).toEqual([125, 'job j_1 failed (could not start: no sh)']);
    expect(end({ state: JobState.JOB_STATE_FAILED, failure: F.FAILURE_CATEGORY_NOT_RUNNABLE })?.[0]).toBe(126);
    expect(end({ state: JobState.JOB_STATE_FAILED, failure: F.FAILURE_CATEGORY_UNTRUSTED })?.[0]).toBe(126);
    expect(end({ state: JobState.JOB_STATE_FAILED, failure: F.FAILURE_CATEGORY_OUT_OF_MEMORY })).toEqual([
      137,
      'job j_1 failed (out of memory)',
    ]);
  });
});
