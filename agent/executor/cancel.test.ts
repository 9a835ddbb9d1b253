/** Cancel and timeout take the whole process group down: SIGTERM, SIGKILL after the grace, no orphans. */
import { afterEach, describe, expect, it } from 'vitest';
import { availableVariants, collectFirst, Fixture, groupGone, pgidOf, text } from './testdata/fixture.js';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { alive, groupMembers, pidsWithArgPrefix } from './testdata/proc.js';
import { waitUntil } from '../../test/support/wait.js';

let fx: Fixture;
const contained = (f: Fixture): boolean => !f.executor.describe().containment.startsWith('process group');
const supervisors = (): number[] => pidsWithArgPrefix(join(fx.workDir, 'attempts', '.standby-'));
afterEach(async () => {
  await fx.cleanup();
});

/** Waits until the job's group has at least `n` live processes; returns the group id. */
async function groupOf(dir: string, n: number): Promise<number> {
  await waitUntil(() => pgidOf(dir) > 0 && groupMembers(pgidOf(dir)).length >= n, {
    what: `${n} processes in the job's group`,
    timeoutMs: 20_000,
  });
  return pgidOf(dir);
}

describe.each(availableVariants())('$name', (variant) => {
  describe('cancel', () => {
    it('kills the job and its background child, and reports cancelled with the reason', async () => {
      fx = new Fixture(variant);
      const h = await fx.executor.start(fx.spec({ script: 'sleep 600 & sleep 600' }));
      const pgid = await groupOf(h.dir, 2);
      await h.cancel(5, 'user asked');
      const s = await h.exited();
      expect(s).toMatchObject({ failure: 'cancelled', message: 'cancelled: user asked' });
      expect(groupMembers(pgid)).toEqual([]);
    });

    it('SIGKILLs a job that ignores SIGTERM once the grace is over', async () => {
      fx = new Fixture(variant);
      const h = await fx.executor.start(fx.spec({ script: "trap '' TERM; echo trapped; sleep 600 & wait" }));
      const pgid = await groupOf(h.dir, 2);
      expect(text(await collectFirst(h, 1), 'stdout')).toBe('trapped\n'); // the trap is set before we cancel
      const t0 = Date.now();
      await h.cancel(1, 'stubborn');
      const s = await h.exited();
      expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
      expect(s).toMatchObject({ failure: 'cancelled', exitCode: 137 });
      expect(groupMembers(pgid)).toEqual([]);
    });

    it('works from another executor (a restarted agent), is idempotent, and is a no-op once exited', async () => {
      fx = new Fixture(variant);
      const h = await fx.executor.start(fx.spec({ script: 'sleep 600' }));
      const pgid = await groupOf(h.dir, 1);
      const [other] = await fx.reopen().recover();
      expect(other?.dir).toBe(h.dir);
      await other!.cancel(2, 'first');
      await other!.cancel(0, 'second');
      const s = await h.exited();
      expect(s).toMatchObject({ failure: 'cancelled', message: 'cancelled: first' });
      expect(await other!.exited()).toEqual(s);
      await h.cancel(0, 'late');
      expect(await h.exited()).toEqual(s);
      expect(groupGone(pgid)).toBe(true);
    });

    it('takes effect when sent right after start, while the supervisor is still booting', async () => {
      fx = new Fixture(variant);
      const h = await fx.executor.start(fx.spec({ script: 'sleep 600' }));
      await h.cancel(0, 'changed my mind');
      const s = await h.exited();
      expect(s.failure).toBe('cancelled');
      const pgid = pgidOf(h.dir);
      if (pgid > 0) expect(groupMembers(pgid)).toEqual([]);
    });
  });

  describe('timeout', () => {
    it('stops a job at its deadline, even a trapping one, with failure timeout', async () => {
      fx = new Fixture(variant);
      const deadline = Date.now() + 1500;
      const h = await fx.executor.start(fx.spec({ script: "trap '' TERM; sleep 600 & wait", deadline, graceSeconds: 1 }));
      const pgid = await groupOf(h.dir, 2);
      const s = await h.exited();
      expect(s.failure).toBe('timeout');
      expect(s.finishedAt).toBeGreaterThanOrEqual(deadline + 900); // SIGTERM was ignored: SIGKILL after the grace
      expect(groupMembers(pgid)).toEqual([]);
    });

    it('times out a job whose deadline has already passed, without starting it', async () => {
      fx = new Fixture(variant);
      const h = await fx.executor.start(fx.spec({ argv: ['sleep', '600'], deadline: Date.now() - 1 }));
      expect(await h.exited()).toMatchObject({ failure: 'timeout', exitCode: -1, message: 'the deadline passed before the job started' });
      expect(existsSync(join(h.dir, 'job.pgid'))).toBe(false);
    });

    it('kills background children left behind when the main process exits', async () => {
      fx = new Fixture(variant);
      // The child keeps stdout open: the attempt must still end, and the child must not survive it.
      const h = await fx.executor.start(fx.spec({ script: 'sh -c \'trap "" TERM; sleep 600\' & echo main done' }));
      const s = await h.exited();
      expect(s).toMatchObject({ failure: 'none', exitCode: 0 });
      expect(groupGone(pgidOf(h.dir))).toBe(true);
    });

    it('kills a leftover that ignores SIGTERM and let go of its pipes, and the next job does not wait for that', async () => {
      fx = new Fixture(variant);
      await fx.executor.recover(); // boots the standby that runs the attempts
      await waitUntil(() => supervisors().length === 1, { what: 'the standby', timeoutMs: 20_000 });
      const supervisorOf = (dir: string): number => Number(readFileSync(join(dir, 'supervisor.pid'), 'utf8'));
      const script = "(trap '' TERM; exec sleep 600 </dev/null >/dev/null 2>&1) & echo main done";
      const first = await fx.executor.start(fx.spec({ script }));
      await collectFirst(first, 1); // its main process is done: the leftover waits for its SIGKILL (2 s)
      const firstLeftover = pgidOf(first.dir);
      // Meanwhile the next job runs beside it, on the same supervisor.
      const second = await fx.executor.start(fx.spec({ script: 'echo next' }));
      expect(supervisorOf(second.dir)).toBe(supervisorOf(first.dir));
      const next = await second.exited();
      expect(next).toMatchObject({ failure: 'none', exitCode: 0 });
      const done = await first.exited();
      expect(done).toMatchObject({ failure: 'none', exitCode: 0 });
      // In a cgroup an attempt ends once nothing of it is left (its leftover's SIGKILL, 2 s on). That the second
      // did not wait for it is what executor.test.ts's side-by-side test shows without a clock: a timing check here
      // failed under CI load, when starting the second took as long as the grace.
      if (contained(fx)) expect(groupMembers(firstLeftover)).toEqual([]);
      await waitUntil(() => groupMembers(firstLeftover).length === 0, { what: 'the leftover to be SIGKILLed', timeoutMs: 5000 });
      expect(alive(supervisorOf(first.dir))).toBe(true); // it stays for the next attempt
    });
  });
});
