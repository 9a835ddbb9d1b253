/**
 * The agent's own credential, kept at `<work-dir>/credential` (mode 0600).
 * The control plane hands it out once, in the Welcome that enrolled the
 * agent with the join token; the agent presents it on every later
 * connection. Written atomically: a crash leaves the old file or the new one.
 */
import { closeSync, fchmodSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export const CREDENTIAL_FILE = 'credential';

/** The path of the credential file in `workDir`. */
export const credentialPath = (workDir: string): string => join(workDir, CREDENTIAL_FILE);

/** The saved credential, or '' when the agent has not enrolled yet. */
export function readCredential(workDir: string): string {
  try {
    return readFileSync(credentialPath(workDir), 'utf8').trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw err;
  }
}

/** Saves `credential` durably, readable by the agent's user only. */
export function saveCredential(workDir: string, credential: string): void {
  mkdirSync(workDir, { recursive: true });
  const path = credentialPath(workDir);
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    fchmodSync(fd, 0o600); // a stale tmp file from a crash keeps its old mode otherwise
    writeSync(fd, `${credential}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}
