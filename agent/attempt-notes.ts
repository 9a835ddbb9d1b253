/**
 * What the agent keeps beside an attempt, outside its directory, so that an
 * agent restarted mid-attempt knows what the Assign said (it is not sent
 * again): its secret values (masking/saved.ts), its artifact plan
 * (artifacts/plan.ts). One JSON file per attempt in a folder of the work
 * dir, mode 0600 in a 0700 folder, written durably before the attempt
 * starts and removed once the control plane has its result.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomicSync } from './executor/files.js';

export class AttemptNotes<T> {
  private readonly dir: string;

  /** `folder`: the notes' folder in `workDir`, one per kind of note. */
  constructor(workDir: string, folder: string) {
    this.dir = join(workDir, folder);
  }

  /** `key` is attemptKey's `jobId/attempt`: one file `jobId.attempt.json`. */
  private fileOf(key: string): string {
    return join(this.dir, `${key.replace('/', '.')}.json`);
  }

  save(key: string, value: T): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    writeFileAtomicSync(this.fileOf(key), JSON.stringify(value), { durable: true });
  }

  /** The note saved for `key`; undefined when there is none. Unreadable is an error, never "none". */
  load(key: string): T | undefined {
    try {
      return JSON.parse(readFileSync(this.fileOf(key), 'utf8')) as T;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  drop(key: string): void {
    rmSync(this.fileOf(key), { force: true });
  }

  /** Removes the notes of attempts no longer on disk (`keep`: the keys of those that are). */
  sweep(keep: ReadonlySet<string>): void {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return;
    }
    for (const n of names) if (!keep.has(n.replace(/\.json$/, '').replace('.', '/'))) rmSync(join(this.dir, n), { force: true });
  }
}
