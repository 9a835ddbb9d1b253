/** Flag values as typed on the command line, checked into numbers and maps with usage errors. */
import { Option } from 'commander';
import { DEFAULT_SERVER } from '../transport/address.js';
import { UsageError } from './errors.js';
import { enumChoices, parseEnum } from './format.js';

/** Accumulates a repeatable flag (`--label a=1 --label b=2`) into an array. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** `--server ADDR`, falling back to `RUNMESH_SERVER`, then {@link DEFAULT_SERVER}. */
export function serverOption(): Option {
  return new Option(
    '--server <addr>',
    "control plane address: host:port, tcp://host:port, tcps://host:port (verified against RUNMESH_TLS_CA or the context's ca), unix:///path, ws://host:port/agent or wss://host:port/agent",
  )
    .env('RUNMESH_SERVER')
    .default(DEFAULT_SERVER);
}

/** `--token TOKEN`, falling back to `RUNMESH_TOKEN`, then the config file's current context (cli/context.ts). */
export function tokenOption(): Option {
  return new Option('--token <token>', 'API token (default: RUNMESH_TOKEN, then the current context of the runmesh config file)').env(
    'RUNMESH_TOKEN',
  );
}

/** Where a client command goes, and as whom. */
export interface Target {
  server: string;
  token?: string;
}

/** A whole number within [min, max]; `flag` names the option in the error. */
export function parseWhole(flag: string, text: string, min: number, max: number): number {
  const value = /^[+-]?\d+$/.test(text.trim()) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new UsageError(`${flag}: expected a whole number from ${min} to ${max}, got "${text}"`);
  }
  return value;
}

/** Same as {@link parseWhole} but passes `undefined` through (an absent optional flag). */
export function optionalWhole(flag: string, text: string | undefined, min: number, max: number): number | undefined {
  return text === undefined ? undefined : parseWhole(flag, text, min, max);
}

/** Splits `KEY=VALUE` at the first `=`; the key must be non-empty, the value may be. */
export function parsePair(flag: string, text: string): [string, string] {
  const at = text.indexOf('=');
  if (at <= 0) throw new UsageError(`${flag}: expected KEY=VALUE, got "${text}"`);
  return [text.slice(0, at), text.slice(at + 1)];
}

/** uint32 upper bound for wire fields. */
export const UINT32_MAX = 0xffff_ffff;
/** int32 bounds for wire fields. */
export const INT32_MAX = 0x7fff_ffff;
export const INT32_MIN = -0x8000_0000;

/** A generated-enum value from its lower-case name (`critical`, `timed_out`); usage error listing the choices otherwise. */
export function enumFlag<E extends number>(flag: string, values: Record<string, string | number>, prefix: string, text: string): E {
  const value = parseEnum<E>(values, prefix, text);
  if (value === undefined) {
    throw new UsageError(`${flag}: unknown value "${text}" (one of ${enumChoices(values, prefix)})`);
  }
  return value;
}
