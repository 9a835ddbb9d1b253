import { describe, expect, it } from 'vitest';
import { Executor, FailureCategory, JobState, QosClass } from '../proto/gen/runmesh/v1/job.js';
import { AgentState } from '../proto/gen/runmesh/v1/cluster.js';
import {
  agentStateName,
  commandText,
  cpuSeconds,
  enumChoices,
  executorName,
  failureName,
  humanBytes,
  keyValues,
  mebibytes,
  parseEnum,
  stateColumn,
  stateName,
  table,
} from './format.js';
import { colourFor } from './colour.js';

describe('table', () => {
  it('sizes columns from their widest cell and trims line ends', () => {
    const out = table(
      ['ID', 'STATE', 'NAME'],
      [
        ['j_1', 'running', 'build'],
        ['j_12345', 'queued', ''],
      ],
    );
    expect(out.split('\n')).toEqual(['ID       STATE    NAME', 'j_1      running  build', 'j_12345  queued']);
  });

  it('prints only the header for no rows, and tolerates short rows', () => {
    expect(table(['A', 'BB'], [])).toBe('A  BB');
    expect(table(['A', 'B'], [['long']])).toBe('A     B\nlong');
  });
});

describe('keyValues', () => {
  it('aligns values and skips undefined ones', () => {
    expect(
      keyValues([
        ['id', 'j_1'],
        ['skipped', undefined],
        ['state', 'failed'],
      ]),
    ).toBe('id:     j_1\nstate:  failed');
  });
});

describe('enum names', () => {
  it('lower-cases states without their prefix', () => {
    expect(stateName(JobState.JOB_STATE_RUNNING)).toBe('running');
    expect(stateName(JobState.JOB_STATE_TIMED_OUT)).toBe('timed_out');
    expect(agentStateName(AgentState.AGENT_STATE_DRAINING)).toBe('draining');
  });

  it('reads user spellings of enum values and refuses UNSPECIFIED', () => {
    for (const text of ['timed_out', 'timed-out', 'TIMED_OUT', 'JOB_STATE_TIMED_OUT', 'job_state_timed_out']) {
      expect(parseEnum(JobState, 'JOB_STATE_', text)).toBe(JobState.JOB_STATE_TIMED_OUT);
    }
    expect(parseEnum(QosClass, 'QOS_CLASS_', 'critical')).toBe(QosClass.QOS_CLASS_CRITICAL);
    expect(parseEnum(QosClass, 'QOS_CLASS_', 'unspecified')).toBeUndefined();
    expect(parseEnum(QosClass, 'QOS_CLASS_', 'unrecognized')).toBeUndefined();
    expect(parseEnum(QosClass, 'QOS_CLASS_', 'urgent')).toBeUndefined();
    expect(enumChoices(QosClass, 'QOS_CLASS_')).toBe('critical, standard, batch');
  });
});

describe('commandText', () => {
  it('quotes words that need it and shortens scripts to their first line', () => {
    expect(commandText(['sh', '-c', "echo 'hi there'"], '')).toBe(`sh -c 'echo '\\''hi there'\\'''`);
    expect(commandText(['make', 'test'], '')).toBe('make test');
    expect(commandText([], 'make\nmake test')).toBe('make ...');
  });
});

describe('usage and executors', () => {
  it('shows peak memory in MiB, CPU in seconds, and names the OOM category and executors readably', () => {
    expect([mebibytes(0n), mebibytes(67_108_864n), mebibytes(1_500_000n), mebibytes(6n * 1024n ** 3n)]).toEqual([
      '0.0 MiB',
      '64.0 MiB',
      '1.4 MiB',
      '6144 MiB',
    ]);
    expect([cpuSeconds(0.004), cpuSeconds(1.25), cpuSeconds(42.42), cpuSeconds(3600.4)]).toEqual(['0.00 s', '1.25 s', '42.4 s', '3600 s']);
    expect([humanBytes(0n), humanBytes(1023), humanBytes(1536n), humanBytes(12_897_485n), humanBytes(3n * 1024n ** 3n)]).toEqual([
      '0 B',
      '1023 B',
      '1.5 KiB',
      '12.3 MiB',
      '3.0 GiB',
    ]);
    expect(failureName(FailureCategory.FAILURE_CATEGORY_OUT_OF_MEMORY)).toBe('out of memory');
    expect([executorName(Executor.EXECUTOR_SHELL), executorName(Executor.EXECUTOR_SANDBOX)]).toEqual(['shell', 'sandbox']);
  });
});

describe('colour', () => {
  it('is on for a terminal only, and never under NO_COLOR or TERM=dumb', () => {
    expect(colourFor({ isTTY: true }, {})).toBe(true);
    expect(colourFor({ isTTY: false }, {})).toBe(false);
    expect(colourFor({}, {})).toBe(false);
    expect(colourFor({ isTTY: true }, { NO_COLOR: '1' })).toBe(false);
    expect(colourFor({ isTTY: true }, { NO_COLOR: '' })).toBe(true);
    expect(colourFor({ isTTY: true }, { TERM: 'dumb' })).toBe(false);
  });

  it('paints the state column of a table without moving the columns', () => {
    const rows = [
      ['j_1', 'failed', 'x'],
      ['j_22', 'succeeded', 'y'],
    ];
    const plain = table(['ID', 'STATE', 'CMD'], rows);
    const coloured = table(['ID', 'STATE', 'CMD'], rows, stateColumn(1, true));
    expect(coloured).toContain('\x1b[31mfailed\x1b[39m');
    expect(coloured.replace(new RegExp(String.fromCharCode(27) + '\\[\\d+m', 'g'), '')).toBe(plain);
    expect(table(['ID', 'STATE', 'CMD'], rows, stateColumn(1, false))).toBe(plain);
  });
});
