/**
 * A spinner on stderr for a wait that lasts: it appears only once the wait
 * has taken a second, only on a terminal (not under --json, TERM=dumb, or
 * CI), and is wiped from its line before anything else is printed, so
 * output and scripts never see it.
 */

/** What the spinner draws on: a terminal's stderr, or a test's stand-in. */
export interface SpinnerStream {
  readonly isTTY?: boolean;
  write(text: string): boolean;
}

export interface SpinnerOptions {
  stream?: SpinnerStream;
  env?: NodeJS.ProcessEnv;
  /** A command's --json: machine output, no spinner. */
  json?: boolean;
  /** How long a wait runs before the spinner shows (default 1 s). */
  delayMs?: number;
  intervalMs?: number;
}

export interface Spinner {
  /** Wipes the spinner's line, if it is drawn, and stops it for good; idempotent. */
  stop(): void;
}

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
const CLEAR_LINE = '\r\x1b[K';
const idle: Spinner = { stop: () => undefined };

/** Whether a spinner may be drawn on `stream`: a terminal that is not dumb, outside CI, and no --json. */
export function spinnerAllowed(stream: SpinnerStream, env: NodeJS.ProcessEnv, json = false): boolean {
  const ci = env.CI !== undefined && env.CI !== '' && env.CI !== 'false' && env.CI !== '0';
  return stream.isTTY === true && env.TERM !== 'dumb' && !ci && !json;
}

/** Starts a spinner with `text` (drawn from `delayMs` on); stop() it before printing anything. */
export function startSpinner(text: string, options: SpinnerOptions = {}): Spinner {
  const stream = options.stream ?? process.stderr;
  if (!spinnerAllowed(stream, options.env ?? process.env, options.json)) return idle;
  let frame = 0;
  let drawn = false;
  let ticker: NodeJS.Timeout | undefined;
  const draw = (): void => {
    stream.write(`${CLEAR_LINE}${FRAMES[frame++ % FRAMES.length]} ${text}`);
    drawn = true;
  };
  // unref: a spinner never keeps the process alive by itself.
  const delay = setTimeout(() => {
    draw();
    ticker = setInterval(draw, options.intervalMs ?? 100).unref();
  }, options.delayMs ?? 1000).unref();
  let stopped = false;
  return {
    stop() {
      if (stopped) return;
      stopped = true;
      clearTimeout(delay);
      clearInterval(ticker);
      if (drawn) stream.write(CLEAR_LINE);
    },
  };
}

/** Runs `work` under a spinner, stopped however the work ends. */
export async function withSpinner<T>(text: string, work: () => Promise<T>, options: SpinnerOptions = {}): Promise<T> {
  const spinner = startSpinner(text, options);
  try {
    return await work();
  } finally {
    spinner.stop();
  }
}
