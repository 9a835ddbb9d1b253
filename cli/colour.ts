/**
 * Colour for human output: only on a terminal, never under NO_COLOR
 * (https://no-color.org: set and not empty) or TERM=dumb, so pipes, files
 * and scripts get plain text. State words are coloured by what they mean.
 */

export type Colour = 'green' | 'red' | 'yellow' | 'cyan';

const SGR: Record<Colour, number> = { green: 32, red: 31, yellow: 33, cyan: 36 };

/** Whether output to `stream` should be coloured. */
export function colourFor(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.NO_COLOR) return false;
  if (env.TERM === 'dumb') return false;
  return stream.isTTY === true;
}

export function paint(text: string, colour: Colour | undefined): string {
  return colour === undefined || text === '' ? text : `\x1b[${SGR[colour]}m${text}\x1b[39m`;
}

const STATE_COLOURS: Readonly<Record<string, Colour>> = {
  succeeded: 'green',
  running: 'cyan',
  ready: 'green',
  failed: 'red',
  dead: 'red',
  timed_out: 'red',
  cancelled: 'yellow',
  skipped: 'yellow',
  draining: 'yellow',
  cordoned: 'yellow',
  disconnected: 'red',
  unhealthy: 'red',
};

/** The colour of a job or agent state word (`failed`, `draining`); none for the rest. */
export const stateColour = (state: string): Colour | undefined => STATE_COLOURS[state];
