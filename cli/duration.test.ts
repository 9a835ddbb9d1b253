import { describe, expect, it } from 'vitest';
import { between, formatDuration, parseDuration, relativeTime } from './duration.js';
import { isUsage } from './errors.js';

describe('parseDuration', () => {
  it.each([
    ['30s', 30],
    ['5m', 300],
    ['1h', 3600],
    ['1h30m', 5400],
    ['2m30s', 150],
    ['1h0m5s', 3605],
    ['90', 90],
    [' 45S ', 45],
    ['0', 0],
    ['7d', 604_800],
    ['1d12h', 129_600],
  ])('%s → %d seconds', (text, seconds) => {
    expect(parseDuration(text)).toBe(seconds);
  });

  it.each(['', 'abc', '5x', '30 s', '1.5h', '-5s', '30m1h', 'h', '5ms', '1h2d', 'd'])(
    'rejects %j with a usage error naming the forms',
    (text) => {
      let caught: unknown;
      try {
        parseDuration(text);
      } catch (err) {
        caught = err;
      }
      expect(isUsage(caught)).toBe(true);
      expect((caught as Error).message).toContain(`invalid duration "${text}"`);
      expect((caught as Error).message).toContain('30s');
    },
  );

  it('rejects durations that do not fit the wire field', () => {
    expect(() => parseDuration('99999999999s')).toThrow(/too long/);
  });
});

describe('formatDuration', () => {
  it.each([
    [850, '850ms'],
    [4200, '4.2s'],
    [42_000, '42s'],
    [192_000, '3m12s'],
    [7_500_000, '2h5m'],
    [3 * 86_400_000 + 4 * 3_600_000, '3d4h'],
    [-1, '-'],
  ])('%d ms → %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });
});

describe('relativeTime', () => {
  const now = Date.parse('2025-01-01T12:00:00Z');
  it('reads past, future and unset times', () => {
    expect(relativeTime('2025-01-01T11:59:57Z', now)).toBe('3s ago');
    expect(relativeTime('2025-01-01T11:55:00Z', now)).toBe('5m ago');
    expect(relativeTime('2025-01-01T12:02:00Z', now)).toBe('in 2m');
    expect(relativeTime('2025-01-01T12:00:00.400Z', now)).toBe('just now');
    expect(relativeTime('2024-12-30T11:00:00Z', now)).toBe('2d ago');
    expect(relativeTime(undefined, now)).toBe('-');
    expect(relativeTime('1970-01-01T00:00:00Z', now)).toBe('-');
  });

  it('measures between two times', () => {
    expect(between('2025-01-01T12:00:00Z', '2025-01-01T12:00:01.500Z')).toBe(1500);
    expect(between(undefined, '2025-01-01T12:00:00Z')).toBeUndefined();
  });
});
