/**
 * The local executor: one directory per attempt under WORKDIR/attempts, each
 * run by a detached supervisor process. `start` is idempotent per attempt;
 * `recover` finds what an earlier agent process left.
 */
import { spawn } from 'node:child_process';
import { existsSync, openSync, closeSync } from 'node:fs';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { LocalAttempt } from './attempt.js';
import type { AttemptHandle, AttemptSpec, Executor } from './executor.js';
import { files } from './files.js';

const ATTEMPT_DIR = /^(j_[0-9a-z]+)\.(\d+)$/;

/** The compiled supervisor: beside this module in dist/, or dist/ of the repo when running from source. */
function supervisorPath(): string {
  const here = fileURLToPath(import.meta.url);
  if (here.endsWith('.js')) return join(dirname(here), 'supervisor.js');
  const built = resolve(dirname(here), '..', '..', 'dist', 'agent', 'executor', 'supervisor.js');
  if (!existsSync(built)) throw new Error(`supervisor not built: ${built} (run npm run build)`);
  return built;
}

export class LocalExecutor implements Executor {
  private readonly root: string;
  private readonly handles = new Map<string, LocalAttempt>();

  constructor(
    workDir: string,
    private readonly log: Logger,
  ) {
    this.root = resolve(workDir, 'attempts');
  }

  private handle(jobId: string, attempt: number): LocalAttempt {
    const key = `${jobId}.${attempt}`;
    let h = this.handles.get(key);
    if (!h) {
      h = new LocalAttempt(jobId, attempt, join(this.root, key), this.log.child({ job_id: jobId, attempt }));
      this.handles.set(key, h);
    }
    return h;
  }

  async start(spec: AttemptSpec): Promise<AttemptHandle> {
    if (!/^j_[0-9a-z]+$/.test(spec.jobId)) throw new Error(`bad job id ${JSON.stringify(spec.jobId)}`);
    const h = this.handle(spec.jobId, spec.attempt);
    await mkdir(this.root, { recursive: true });
    try {
      await mkdir(h.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return h; // already started: the same attempt again is a no-op
      throw err;
    }
    const f = files(h.dir);
    await writeFile(f.spec, JSON.stringify(spec));
    await writeFile(f.spool, '');
    const out = openSync(f.supervisorLog, 'a');
    try {
      const child = spawn(process.execPath, [supervisorPath(), h.dir], { detached: true, stdio: ['ignore', out, out] });
      if (!child.pid) throw new Error('could not start the supervisor');
      await writeFile(f.supervisorPid, String(child.pid));
      child.unref();
    } finally {
      closeSync(out);
    }
    return h;
  }

  async recover(): Promise<AttemptHandle[]> {
    const names = await readdir(this.root).catch(() => [] as string[]);
    const out: AttemptHandle[] = [];
    for (const name of names) {
      const m = ATTEMPT_DIR.exec(name);
      if (!m || !existsSync(files(join(this.root, name)).spec)) continue;
      out.push(this.handle(m[1]!, Number(m[2])));
    }
    return out;
  }
}
