/**
 * The attempt directory layout, shared by the executor (in the agent) and the
 * supervisor (its own process): everything an attempt needs to be found and
 * finished by a later agent process lives here.
 */
import { join } from 'node:path';

export const files = (dir: string) => ({
  spec: join(dir, 'spec.json'),
  spool: join(dir, 'output.spool'),
  status: join(dir, 'status.json'),
  cancel: join(dir, 'cancel.json'),
  supervisorPid: join(dir, 'supervisor.pid'),
  jobPgid: join(dir, 'job.pgid'),
  supervisorLog: join(dir, 'supervisor.log'),
  /** Written once the supervisor handles cancel signals; before that a signal would kill it. */
  ready: join(dir, 'supervisor.ready'),
  work: join(dir, 'work'),
});

export const STREAM_CODES = { stdout: 1, stderr: 2 } as const;
