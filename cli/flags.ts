/**
 * Flag parsers for the server-side commands (server, agent, dev), as commander
 * argument parsers; built on the client commands' checks in options.ts and
 * duration.ts so every flag error reads the same.
 */
import { parseDuration } from './duration.js';
import { UsageError } from './errors.js';
import { parsePair, parseWhole, UINT32_MAX } from './options.js';

/** A repeatable flag whose values may also be comma-separated (`--labels a=1,b=2 --labels c=3`). */
export const collectList = (value: string, previous: string[] = []): string[] => [...previous, ...value.split(',').map((s) => s.trim()).filter(Boolean)];

export function parseLabels(items: string[], flag = '--labels'): Record<string, string> {
  return Object.fromEntries(items.map((item) => parsePair(flag, item).map((s) => s.trim())));
}

export const whole = (flag: string) => (text: string): number => parseWhole(flag, text, 0, UINT32_MAX);

/** A duration flag (`30s`, `5m`, `1h`, bare seconds) in milliseconds. */
export const durationMs = (text: string): number => parseDuration(text) * 1000;

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

/** A log level, as the flag or RUNMESH_LOG_LEVEL gave it; pino's own error for a bad one reads as an internal error. */
export function logLevel(text: string, flag = '--log-level'): string {
  const level = text.trim().toLowerCase();
  if (!(LOG_LEVELS as readonly string[]).includes(level)) throw new UsageError(`${flag}: expected one of ${LOG_LEVELS.join('|')}, got "${text}"`);
  return level;
}
