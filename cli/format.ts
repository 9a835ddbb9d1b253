/** Human output: aligned tables, key/value blocks, and enum values as operators read them. */
import { Executor, FailureCategory, JobState, QosClass, Strategy } from '../proto/gen/runmesh/v1/job.js';
import { AgentState } from '../proto/gen/runmesh/v1/cluster.js';
import { type Colour, paint, stateColour } from './colour.js';

/** Which colour a body cell is painted in (none: plain); widths are measured on the plain text. */
export type CellColour = (cell: string, col: number) => Colour | undefined;

/**
 * Renders rows under a header, each column as wide as its widest cell, two
 * spaces apart, no trailing spaces. Missing cells print as empty.
 */
export function table(header: readonly string[], rows: readonly (readonly string[])[], colour?: CellColour): string {
  const all = [header, ...rows];
  const widths = header.map((_, col) => Math.max(...all.map((row) => (row[col] ?? '').length)));
  return all
    .map((row, i) =>
      widths
        .map((w, col) => {
          const cell = row[col] ?? '';
          const painted = i > 0 && colour ? paint(cell, colour(cell, col)) : cell;
          return painted + ' '.repeat(w - cell.length);
        })
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** Colours the state column `col` of a table when `on`; undefined (plain) otherwise. */
export function stateColumn(col: number, on: boolean): CellColour | undefined {
  return on ? (cell, c) => (c === col ? stateColour(cell) : undefined) : undefined;
}

/** `key:  value` lines with the values aligned; pairs with an undefined value are skipped. */
export function keyValues(pairs: readonly (readonly [string, string | undefined])[]): string {
  const shown = pairs.filter((p): p is readonly [string, string] => p[1] !== undefined);
  const width = Math.max(0, ...shown.map(([k]) => k.length + 1));
  return shown.map(([k, v]) => `${`${k}:`.padEnd(width)}  ${v}`.trimEnd()).join('\n');
}

/** Indents every line of a block (for tables nested under a heading). */
export function indent(block: string, by = 2): string {
  const pad = ' '.repeat(by);
  return block
    .split('\n')
    .map((line) => (line ? pad + line : line))
    .join('\n');
}

/** Lower-cases an enum member name without its prefix: `JOB_STATE_TIMED_OUT` → `timed_out`. */
function enumLabel(name: string | undefined, prefix: string, separator = '_'): string {
  if (name === undefined) return 'unknown';
  return name
    .slice(name.startsWith(prefix) ? prefix.length : 0)
    .toLowerCase()
    .replace(/_/g, separator);
}

/** `running`, `timed_out`, ...: one word per state, so scripts can split table columns on spaces. */
export const stateName = (s: JobState): string => enumLabel(JobState[s], 'JOB_STATE_');
export const agentStateName = (s: AgentState): string => enumLabel(AgentState[s], 'AGENT_STATE_');
export const qosName = (q: QosClass): string => enumLabel(QosClass[q], 'QOS_CLASS_');
export const strategyName = (s: Strategy): string => enumLabel(Strategy[s], 'STRATEGY_');
export const executorName = (e: Executor): string => enumLabel(Executor[e], 'EXECUTOR_');
/** `exit code`, `agent lost`, `out of memory`...: failure categories appear inside sentences. */
export const failureName = (f: FailureCategory): string => enumLabel(FailureCategory[f], 'FAILURE_CATEGORY_', ' ');

/**
 * Reads a user-typed enum value (`timed-out`, `TIMED_OUT`, `JOB_STATE_TIMED_OUT`)
 * against the members of a generated enum; undefined when nothing matches.
 * The UNSPECIFIED and UNRECOGNIZED members are never accepted.
 */
export function parseEnum<E extends number>(values: Record<string, string | number>, prefix: string, input: string): E | undefined {
  const key =
    prefix +
    input
      .trim()
      .toUpperCase()
      .replace(/[-\s]/g, '_')
      .replace(new RegExp(`^${prefix}`), '');
  if (key.endsWith('_UNSPECIFIED')) return undefined;
  const value = values[key];
  return typeof value === 'number' && value >= 0 ? (value as E) : undefined;
}

/** The accepted spellings of an enum, for usage messages: `queued, waiting, ...`. */
export function enumChoices(values: Record<string, string | number>, prefix: string): string {
  return Object.keys(values)
    .filter((k) => k.startsWith(prefix) && !k.endsWith('_UNSPECIFIED'))
    .map((k) => k.slice(prefix.length).toLowerCase())
    .join(', ');
}

/** Command line of a job spec for tables: argv joined, or the script's first line. */
export function commandText(argv: readonly string[], script: string): string {
  if (argv.length > 0) return argv.map(quoteWord).join(' ');
  const first = script.split('\n', 1)[0] ?? '';
  return script.includes('\n') ? `${first} ...` : first;
}

function quoteWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** Bytes as MiB for usage columns: one decimal below 100 MiB (`64.0 MiB`), whole above (`6144 MiB`). */
export function mebibytes(bytes: bigint): string {
  const mib = Number(bytes) / (1024 * 1024);
  return `${mib < 100 ? mib.toFixed(1) : Math.round(mib)} MiB`;
}

/** A size as people read it: `812 B`, `1.5 KiB`, `12.3 MiB`, `2.0 GiB` (binary units, one decimal from KiB up). */
export function humanBytes(bytes: bigint | number): string {
  const n = Number(bytes);
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = n / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

/** CPU time as seconds: `0.42 s`, `12.5 s`, `3600 s`. */
export function cpuSeconds(seconds: number): string {
  return `${seconds < 10 ? seconds.toFixed(2) : seconds < 100 ? seconds.toFixed(1) : Math.round(seconds)} s`;
}

/** Prints a JSON document (or array) on stdout. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}
