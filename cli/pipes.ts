/**
 * What a closed stdout or stderr means. The reader of a pipe may go away
 * (`runmesh jobs logs -f | head -1`, a log shipper restarted): Node then
 * reports EPIPE as an 'error' on the stream, and an unhandled one ends the
 * process with a stack trace. A command that prints and exits simply stops
 * (nobody is reading); a long-running one (server, agent, dev) keeps running
 * and its writes to the gone reader are dropped: a control plane must not die
 * because a terminal or a log pipe closed. A printing command whose stdout
 * fails otherwise (a full disk) says so in one line and exits 1.
 */
let longRunning = false;

/** Called by server, agent and dev before they start: a closed stdout or stderr leaves them running. */
export function keepRunningWhenOutputCloses(): void {
  longRunning = true;
}

export function handleClosedPipes(exit: (code: number) => void = (code) => process.exit(code)): void {
  const onError =
    (stream: 'stdout' | 'stderr') =>
    (err: NodeJS.ErrnoException): void => {
      if (err.code !== 'EPIPE') {
        if (longRunning || stream === 'stderr') throw err;
        // stdout cannot take the output (`runmesh artifacts get ... > file` on a full disk): one line, and a failure.
        process.stderr.write(`runmesh: cannot write to stdout: ${err.message}\n`);
        return exit(1);
      }
      // stderr gone: nothing more can be said there; stdout gone: a printing command's reader has what it wanted.
      if (!longRunning && stream === 'stdout') exit(0);
    };
  process.stdout.on('error', onError('stdout'));
  process.stderr.on('error', onError('stderr'));
}
