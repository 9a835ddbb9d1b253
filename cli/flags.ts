/**
 * Flag parsers for the server-side commands (server, agent, dev), as commander
 * argument parsers; built on the client commands' checks in options.ts and
 * duration.ts so every flag error reads the same.
 */
import { Option } from 'commander';
import { parseDuration } from './duration.js';
import { parseAddress, parseHostPort } from '../transport/address.js';
import { UsageError } from './errors.js';
import { parsePair, parseWhole, UINT32_MAX } from './options.js';

/** A repeatable flag whose values may also be comma-separated (`--labels a=1,b=2 --labels c=3`). */
export const collectList = (value: string, previous: string[] = []): string[] => [
  ...previous,
  ...value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean),
];

export function parseLabels(items: string[], flag = '--labels'): Record<string, string> {
  return Object.fromEntries(
    items.map((item): [string, string] => {
      const [k, v] = parsePair(flag, item);
      return [k.trim(), v.trim()];
    }),
  );
}

export const whole =
  (flag: string) =>
  (text: string): number =>
    parseWhole(flag, text, 0, UINT32_MAX);

/** A duration flag (`30s`, `5m`, `1h`, bare seconds) in milliseconds. */
export const durationMs = (text: string): number => parseDuration(text) * 1000;

/** A duration flag that must be at least a second. */
export const positiveDurationMs =
  (flag: string) =>
  (text: string): number => {
    const ms = durationMs(text);
    if (ms < 1000) throw new UsageError(`${flag}: must be at least 1s (got "${text}")`);
    return ms;
  };

/**
 * A duration flag whose default `--help` shows as a duration (`7d`, `1m`),
 * written from the value itself so the two cannot drift; commander would
 * print the milliseconds.
 */
export function durationOption(flags: string, description: string, parse: (text: string) => number, defaultMs: number): Option {
  return new Option(flags, description).argParser(parse).default(defaultMs, durationText(defaultMs));
}

const UNITS: readonly [string, number][] = [
  ['d', 86_400_000],
  ['h', 3_600_000],
  ['m', 60_000],
  ['s', 1000],
];

/** Milliseconds as a flag value would be typed: the largest unit that divides them (`7d`, `90s`, `0`); `ms` below a second. */
export function durationText(ms: number): string {
  if (ms === 0) return '0';
  const [unit, size] = UNITS.find(([, size]) => ms % size === 0) ?? ['ms', 1];
  return `${ms / size}${unit}`;
}

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

/** A log level, as the flag or RUNMESH_LOG_LEVEL gave it; pino's own error for a bad one reads as an internal error. */
export function logLevel(text: string, flag = '--log-level'): string {
  const level = text.trim().toLowerCase();
  if (!(LOG_LEVELS as readonly string[]).includes(level))
    throw new UsageError(`${flag}: expected one of ${LOG_LEVELS.join('|')}, got "${text}"`);
  return level;
}

/** A transport address flag (tcp, tcps, unix, ws, wss), checked as it is parsed so a typo stops us before anything starts. */
export const address =
  (flag: string) =>
  (text: string): string => {
    try {
      parseAddress(text);
    } catch (err) {
      throw new UsageError(`${flag}: ${(err as Error).message}`);
    }
    return text;
  };

/** A repeatable, comma-separated list of transport addresses, each checked. */
export const addresses =
  (flag: string) =>
  (value: string, previous: string[] = []): string[] => {
    const all = collectList(value, previous);
    all.slice(previous.length).forEach(address(flag));
    return all;
  };

/** host:port (or [v6]:port) for a plain TCP listener, port 0 to 65535. */
export const hostPort =
  (flag: string) =>
  (text: string): string => {
    try {
      parseHostPort(text); // what the control plane's HTTP listener parses it with
    } catch {
      throw new UsageError(`${flag}: expected host:port with a port from 0 to 65535, got "${text}"`);
    }
    return text.trim();
  };

/** `--tenant-weight tenant=weight` pairs: weights are positive numbers. */
export function tenantWeights(items: string[], flag = '--tenant-weight'): Record<string, number> {
  return Object.fromEntries(
    Object.entries(parseLabels(items, flag)).map(([tenant, text]) => {
      const weight = Number(text);
      if (!(text !== '' && Number.isFinite(weight) && weight > 0))
        throw new UsageError(`${flag}: ${tenant}=${text}: the weight must be a positive number`);
      return [tenant, weight];
    }),
  );
}
