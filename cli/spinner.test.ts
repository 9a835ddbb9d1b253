import { describe, expect, it } from 'vitest';
import { spinnerAllowed, startSpinner, type SpinnerStream } from './spinner.js';

/** A terminal stand-in: says it is a TTY and keeps what is written, telling a waiter of each write. */
class FakeTerminal implements SpinnerStream {
  readonly isTTY = true;
  readonly writes: string[] = [];
  private waiters: (() => void)[] = [];
  write(text: string): boolean {
    this.writes.push(text);
    for (const w of this.waiters.splice(0)) w();
    return true;
  }
  next(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }
}

const TTY_ENV = { TERM: 'xterm-256color' };

describe('spinner', () => {
  it('is drawn only on a terminal that is not dumb, outside CI, without --json', () => {
    const tty = { isTTY: true, write: () => true };
    expect(spinnerAllowed(tty, TTY_ENV)).toBe(true);
    expect(spinnerAllowed({ write: () => true }, TTY_ENV)).toBe(false);
    expect(spinnerAllowed(tty, { TERM: 'dumb' })).toBe(false);
    expect(spinnerAllowed(tty, { ...TTY_ENV, CI: 'true' })).toBe(false);
    expect(spinnerAllowed(tty, { ...TTY_ENV, CI: 'false' })).toBe(true);
    expect(spinnerAllowed(tty, TTY_ENV, true)).toBe(false);
  });

  it('draws after its delay, turns, and wipes its line when stopped', async () => {
    const term = new FakeTerminal();
    const spinner = startSpinner('waiting for j_1', { stream: term, env: TTY_ENV, delayMs: 5, intervalMs: 5 });
    await term.next();
    await term.next();
    spinner.stop();
    spinner.stop();
    expect(term.writes.slice(0, 2)).toEqual(['\r\x1b[K⠋ waiting for j_1', '\r\x1b[K⠙ waiting for j_1']);
    expect(term.writes.at(-1)).toBe('\r\x1b[K');
    expect(term.writes.filter((w) => w === '\r\x1b[K')).toHaveLength(1);
  });

  it('writes nothing when stopped before its delay, or where it is not allowed', async () => {
    const term = new FakeTerminal();
    startSpinner('quick', { stream: term, env: TTY_ENV, delayMs: 10_000 }).stop();
    const dumb = startSpinner('dumb', { stream: term, env: { TERM: 'dumb' }, delayMs: 0, intervalMs: 1 });
    await new Promise((resolve) => setTimeout(resolve, 20));
    dumb.stop();
    expect(term.writes).toEqual([]);
  });
});
