/** Durations as operators type them (`30s`, `5m`, `1h30m`, `7d`, `90`) and as the CLI prints them. */
import { UsageError } from './errors.js';

const DURATION = /^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/;

/**
 * Parses a duration into whole seconds: `90` (plain seconds), `30s`, `5m`,
 * `1h`, `7d`, or combinations in d-h-m-s order (`1h30m`, `2m30s`, `1d12h`). Throws a
 * {@link UsageError} naming the accepted forms otherwise.
 */
export function parseDuration(text: string): number {
  const input = text.trim().toLowerCase();
  if (/^\d+$/.test(input)) return checked(Number(input), text);
  const match = DURATION.exec(input);
  if (input === '' || !match) {
    throw new UsageError(`invalid duration "${text}" (use e.g. 90, 30s, 5m, 1h30m, 7d)`);
  }
  const [, d, h, m, s] = match;
  const seconds = Number(d ?? 0) * 86_400 + Number(h ?? 0) * 3600 + Number(m ?? 0) * 60 + Number(s ?? 0);
  return checked(seconds, text);
}

// timeout_seconds is a uint32 on the wire.
function checked(seconds: number, text: string): number {
  if (!Number.isSafeInteger(seconds) || seconds > 0xffff_ffff) {
    throw new UsageError(`duration "${text}" is too long`);
  }
  return seconds;
}

/** Formats milliseconds compactly: `850ms`, `4.2s`, `3m12s`, `2h5m`, `3d4h`. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '-';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)}s`;
  const total = Math.floor(ms / 1000);
  const [d, h, m, s] = [Math.floor(total / 86400), Math.floor(total / 3600) % 24, Math.floor(total / 60) % 60, total % 60];
  if (d > 0) return `${d}d${h}h`;
  if (h > 0) return `${h}h${m}m`;
  if (m > 0) return `${m}m${s}s`;
  return `${s}s`;
}

/** `3s ago`, `5m ago`, `2h ago`, `in 2m` for a future time; `-` when the time is unset or unreadable. */
export function relativeTime(iso: string | undefined, now: number): string {
  const at = parseTime(iso);
  if (at === undefined) return '-';
  const delta = now - at;
  if (Math.abs(delta) < 1000) return 'just now';
  const text = coarse(Math.abs(delta));
  return delta > 0 ? `${text} ago` : `in ${text}`;
}

// One unit is enough to say how long ago; precision lives in the ISO time beside it.
function coarse(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86_400)}d`;
}

/** Milliseconds between two ISO times, or undefined when either is missing. */
export function between(fromIso: string | undefined, toIso: string | undefined): number | undefined {
  const from = parseTime(fromIso);
  const to = parseTime(toIso);
  return from === undefined || to === undefined ? undefined : to - from;
}

/** Epoch milliseconds of an ISO time; undefined for unset or the zero timestamp. */
export function parseTime(iso: string | undefined): number | undefined {
  if (!iso) return undefined;
  const ms = Date.parse(iso);
  return Number.isNaN(ms) || ms <= 0 ? undefined : ms;
}
