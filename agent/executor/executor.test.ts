/** The executor with real supervisors and real jobs: output, exit status, idempotent start, remove. */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isAttemptRunningError, isInvalidAttemptSpecError } from './errors.js';
import { createExecutor } from './index.js';
import { supervisorPath } from './local.js';
import { availableVariants, collect, collectFirst, Fixture, silent, text } from './testdata/fixture.js';
import { supervisorMarks } from './liveness.js';
import { alive, pidsWithArg, pidsWithArgPrefix } from './testdata/proc.js';
import { sleep, waitUntil } from '../../test/support/wait.js';

let fx: Fixture;
afterEach(async () => {
  await fx.cleanup();
});

describe.each(availableVariants())('executor output and exit status: $name', (variant) => {
  it('spools interleaved stdout and stderr so that each stream reads back exactly as written', async () => {
    fx = new Fixture(variant);
    const script = 'i=1; while [ $i -le 200 ]; do echo "out $i"; echo "err $i" >&2; i=$((i+1)); done';
    const h = await fx.executor.start(fx.spec({ script }));
    const records = await collect(h);
    const lines = (p: string): string => Array.from({ length: 200 }, (_, i) => `${p} ${i + 1}\n`).join('');
    expect(text(records, 'stdout')).toBe(lines('out'));
    expect(text(records, 'stderr')).toBe(lines('err'));
    expect(records.map((r) => r.seq)).toEqual(records.map((_, i) => i));
    const s = await h.exited();
    expect(s).toMatchObject({ exitCode: 0, failure: 'none', records: records.length });
    expect(s.finishedAt).toBeGreaterThanOrEqual(s.startedAt);
  });

  it('reports a non-zero exit as exit_code and a missing program as not_runnable', async () => {
    fx = new Fixture(variant);
    const three = await fx.executor.start(fx.spec({ script: 'echo bye; exit 3' }));
    const missing = await fx.executor.start(fx.spec({ argv: ['/nonexistent/runmesh-prog', '-x'] }));
    expect(await three.exited()).toMatchObject({ exitCode: 3, failure: 'exit_code', message: 'exited with code 3', records: 1 });
    const m = await missing.exited();
    expect(m).toMatchObject({ exitCode: 127, failure: 'not_runnable', records: 0 });
    expect(m.message).toContain('/nonexistent/runmesh-prog');
    expect(await collect(missing)).toEqual([]);
  });

  it('runs argv directly in work/ with a clean env plus the spec env and the RUNMESH_ variables', async () => {
    fx = new Fixture(variant);
    process.env.RUNMESH_TEST_LEAK = 'leaked';
    try {
      const script = 'echo "$RUNMESH_JOB_ID $RUNMESH_ATTEMPT $FOO ${RUNMESH_TEST_LEAK:-clean}"; echo "$RUNMESH_WORKSPACE"; pwd';
      const spec = fx.spec({ argv: ['sh', '-c', script], env: { FOO: 'bar' }, attempt: 4 });
      const h = await fx.executor.start(spec);
      const [ids, workspace, cwd] = text(await collect(h), 'stdout')
        .trim()
        .split('\n');
      expect(ids).toBe(`${spec.jobId} 4 bar clean`);
      expect(workspace).toBe(`${h.dir}/work`);
      expect(cwd).toBe(`${h.dir}/work`);
    } finally {
      delete process.env.RUNMESH_TEST_LEAK;
    }
  });

  it('runs a script under sh -e: the first failing command ends it', async () => {
    fx = new Fixture(variant);
    const h = await fx.executor.start(fx.spec({ script: 'echo one\nfalse\necho two' }));
    expect(await h.exited()).toMatchObject({ exitCode: 1, failure: 'exit_code' });
    expect(text(await collect(h), 'stdout')).toBe('one\n');
  });

  it('reads from any sequence number, and follows a job that is still writing', async () => {
    fx = new Fixture(variant);
    const h = await fx.executor.start(fx.spec({ script: 'for i in 1 2 3 4 5 6; do echo "line $i"; sleep 0.1; done' }));
    const live = await collect(h);
    expect(text(live, 'stdout')).toBe([1, 2, 3, 4, 5, 6].map((i) => `line ${i}\n`).join(''));
    expect(live.length).toBeGreaterThan(2); // the sleeps keep most reads apart (a busy machine may merge a few)
    const from = live.length - 2;
    const tail = await collect(h, from);
    expect(tail.map((r) => [r.seq, r.data.toString()])).toEqual(live.slice(from).map((r) => [r.seq, r.data.toString()]));
    expect(await collect(h, 100)).toEqual([]);
  });

  it('ends records() promptly when the signal is aborted', async () => {
    fx = new Fixture(variant);
    const h = await fx.executor.start(fx.spec({ script: 'echo started; sleep 600' }));
    const ac = new AbortController();
    const seen: string[] = [];
    const started = Date.now();
    for await (const r of h.records(0, ac.signal)) {
      seen.push(r.data.toString());
      setTimeout(() => ac.abort(new Error('test done')), 100);
    }
    expect(seen).toEqual(['started\n']);
    expect(Date.now() - started).toBeLessThan(10_000);
    await h.cancel(0, 'test over');
    expect((await h.exited()).failure).toBe('cancelled');
  });

  it('streams 50 MB of stdout through the spool byte for byte', async () => {
    fx = new Fixture(variant);
    const size = 50 * 1024 * 1024;
    const h = await fx.executor.start(fx.spec({ script: `head -c ${size} /dev/zero | tr '\\0' 'x'` }));
    const t0 = performance.now();
    let bytes = 0;
    let records = 0;
    let allX = true;
    const xs = Buffer.alloc(64 * 1024, 'x');
    for await (const r of h.records(0, AbortSignal.timeout(120_000))) {
      bytes += r.data.length;
      records++;
      if (!r.data.equals(xs.subarray(0, r.data.length))) allX = false;
    }
    const seconds = (performance.now() - t0) / 1000;
    console.log(
      `executor spool: ${(bytes / 1048576).toFixed(0)} MB in ${records} records, ${(bytes / 1048576 / seconds).toFixed(1)} MB/s end to end`,
    );
    expect(bytes).toBe(size);
    expect(allX).toBe(true);
    expect(await h.exited()).toMatchObject({ failure: 'none', records });
  });
});

describe('supervisor log', () => {
  it('stamps each line with when it was logged, though pino loads after the job has run a while', async () => {
    fx = new Fixture();
    const h = await fx.executor.start(fx.spec({ script: 'sleep 1; date +%s%3N' }));
    const printedAt = Number(text(await collect(h), 'stdout').trim());
    await h.exited();
    await waitUntil(() => readFileSync(join(h.dir, 'supervisor.log'), 'utf8').includes('job finished'), {
      what: 'the last line',
      timeoutMs: 20_000,
    });
    const lines = readFileSync(join(h.dir, 'supervisor.log'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { msg: string; time: number });
    expect(lines.map((l) => l.msg)).toEqual(['job started', 'job finished']);
    // Stamped when it was logged, right after the spawn (the job's pgid file is written just before),
    // not when it was written, once pino had loaded at least 150 ms later; and well before the job printed.
    const spawnedAt = statSync(join(h.dir, 'job.pgid')).mtimeMs;
    expect(lines[0]!.time - spawnedAt).toBeLessThan(100);
    expect(printedAt - lines[0]!.time).toBeGreaterThanOrEqual(500);
    expect(lines[1]!.time).toBeGreaterThanOrEqual(printedAt);
  });
});

describe('executor start and remove', () => {
  it('returns the existing handle on a second start of the same attempt and runs one process', async () => {
    fx = new Fixture();
    const spec = fx.spec({ script: 'echo once; sleep 600' });
    const [a, b] = await Promise.all([fx.executor.start(spec), fx.executor.start(spec)]);
    const c = await fx.executor.start(spec);
    const d = await fx.reopen().start(spec); // a restarted agent getting the same Assign again
    expect(b).toBe(a);
    expect(c).toBe(a);
    expect(d.dir).toBe(a.dir);
    await sleep(300); // deliberate: time for a second supervisor to show, which must not
    expect(new Set(supervisorMarks(a.dir).flatMap(pidsWithArg)).size).toBe(1);
    const outputs = text(await collectFirst(a, 1), 'stdout');
    expect(outputs).toBe('once\n');
    await a.cancel(0, 'test over');
    await a.exited();
  });

  it('refuses to remove a running attempt and removes a finished one', async () => {
    fx = new Fixture();
    const h = await fx.executor.start(fx.spec({ script: 'sleep 600' }));
    const err = await h.remove().catch((e: unknown) => e);
    expect(isAttemptRunningError(err)).toBe(true);
    await h.cancel(0, 'test over');
    await h.exited();
    await h.remove();
    expect(existsSync(h.dir)).toBe(false);
    expect(await fx.executor.recover()).toEqual([]);
  });

  it('refuses a spec with both argv and script, or a job id that is not a plain name', async () => {
    fx = new Fixture();
    const both = await fx.executor.start(fx.spec({ argv: ['true'], script: 'true' })).catch((e: unknown) => e);
    const path = await fx.executor.start(fx.spec({ jobId: '../escape', script: 'true' })).catch((e: unknown) => e);
    expect(isInvalidAttemptSpecError(both)).toBe(true);
    expect(isInvalidAttemptSpecError(path)).toBe(true);
    expect(await fx.executor.recover()).toEqual([]);
  });
});

describe('standby supervisor', () => {
  const standbys = (): number[] => pidsWithArgPrefix(join(fx.workDir, 'attempts', '.standby-'));

  it('runs every attempt on one supervisor booted ahead, side by side: a long job does not hold up the next', async () => {
    fx = new Fixture();
    await fx.executor.recover(); // an agent starting up boots its supervisor here
    await waitUntil(() => standbys().length === 1, { what: 'the supervisor to boot', timeoutMs: 20_000 });
    const [ready] = standbys();
    const long = await fx.executor.start(fx.spec({ script: 'echo long; sleep 600' }));
    await collectFirst(long, 1);
    const second = await fx.executor.start(fx.spec({ script: 'echo warm; echo to-stderr >&2; exit 4' }));
    const token = readFileSync(join(second.dir, 'supervisor.standby'), 'utf8');
    for (const h of [long, second]) expect(readFileSync(join(h.dir, 'supervisor.pid'), 'utf8')).toBe(String(ready));
    const records = await collect(second);
    expect(text(records, 'stdout')).toBe('warm\n');
    expect(text(records, 'stderr')).toBe('to-stderr\n');
    expect(await second.exited()).toMatchObject({ exitCode: 4, failure: 'exit_code' });
    // Its own log (stdout and stderr) stays in the attempts root while it lives; each attempt's lines go to the attempt.
    expect(existsSync(token)).toBe(true);
    await waitUntil(() => readFileSync(join(second.dir, 'supervisor.log'), 'utf8').includes('job finished'), {
      what: 'the last line',
      timeoutMs: 20_000,
    });
    const logged = readFileSync(join(second.dir, 'supervisor.log'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { msg: string; exit_code?: number });
    expect(logged.map((l) => l.msg)).toEqual(['job started', 'job finished']);
    expect(logged[1]?.exit_code).toBe(4);
    expect(standbys()).toEqual([ready]);
    await long.cancel(0, 'test over');
    expect(await long.exited()).toMatchObject({ failure: 'cancelled' });
  });

  it('hands a supervisor back from its attempt to the next one, which logs to its own file', async () => {
    fx = new Fixture();
    await fx.executor.recover();
    await waitUntil(() => standbys().length === 1, { what: 'the standby', timeoutMs: 20_000 });
    const pids: string[] = [];
    const kept = [];
    for (let i = 0; i < 6; i++) {
      const h = await fx.executor.start(fx.spec({ script: `echo run-$RUNMESH_ATTEMPT-${i}; pwd >&2` }));
      pids.push(readFileSync(join(h.dir, 'supervisor.pid'), 'utf8'));
      const records = await collect(h);
      expect(text(records, 'stdout')).toBe(`run-1-${i}\n`);
      expect(text(records, 'stderr')).toBe(`${join(h.dir, 'work')}\n`);
      expect(await h.exited()).toMatchObject({ exitCode: 0, failure: 'none', records: 2 });
      // The agent removes an attempt once the control plane has its result, maybe before the supervisor's last line.
      if (i < 4) await h.remove();
      else kept.push(h);
    }
    // One process ran them all, and stays for the next.
    expect(new Set(pids).size).toBe(1);
    expect(alive(Number(pids[0]))).toBe(true);
    for (const h of kept) {
      await waitUntil(() => readFileSync(join(h.dir, 'supervisor.log'), 'utf8').includes('job finished'), {
        what: 'the last line',
        timeoutMs: 20_000,
      });
      const logged = readFileSync(join(h.dir, 'supervisor.log'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { msg: string; job_id: string });
      expect(logged.map((l) => [l.msg, l.job_id])).toEqual([
        ['job started', h.jobId],
        ['job finished', h.jobId],
      ]);
    }
    expect(standbys().length).toBe(1);
  });

  it("ignores a cancel signal meant for the attempt before: only the running attempt's cancel.json counts", async () => {
    fx = new Fixture();
    await fx.executor.recover();
    await waitUntil(() => standbys().length === 1, { what: 'the standby', timeoutMs: 20_000 });
    const a = await fx.executor.start(fx.spec({ script: 'true' }));
    await a.exited();
    const b = await fx.executor.start(fx.spec({ script: 'echo tick; sleep 600' }));
    const pid = Number(readFileSync(join(b.dir, 'supervisor.pid'), 'utf8'));
    expect(pid).toBe(Number(readFileSync(join(a.dir, 'supervisor.pid'), 'utf8')));
    await collectFirst(b, 1);
    // A late cancel of `a`: its request lands in a's directory, its signal reaches the supervisor now running b.
    writeFileSync(join(a.dir, 'cancel.json'), JSON.stringify({ grace: 0, reason: 'late', at: Date.now() }));
    process.kill(pid, 'SIGUSR2');
    await sleep(300); // deliberate: time for the signal to stop b, which it must not
    expect(existsSync(join(b.dir, 'status.json'))).toBe(false);
    await b.cancel(0, 'test over');
    expect(await b.exited()).toMatchObject({ failure: 'cancelled', message: 'cancelled: test over' });
  });

  it('cancels a job on a standby supervisor and leaves nothing behind', async () => {
    fx = new Fixture();
    await fx.executor.recover(); // an agent starting up boots its standby here
    await waitUntil(() => standbys().length === 1, { what: 'the standby', timeoutMs: 20_000 });
    const h = await fx.executor.start(fx.spec({ script: 'echo tick; sleep 600' }));
    expect(existsSync(join(h.dir, 'supervisor.standby'))).toBe(true);
    await collectFirst(h, 1);
    await h.cancel(1, 'test');
    expect(await h.exited()).toMatchObject({ failure: 'cancelled' });
  });

  it('is not booted when standbys are off: every attempt starts cold', async () => {
    fx = new Fixture();
    const cold = createExecutor({ workDir: fx.workDir, logger: silent, standby: false });
    await cold.recover();
    const h = await cold.start(fx.spec({ script: 'echo cold' }));
    expect(text(await collect(h), 'stdout')).toBe('cold\n');
    expect(existsSync(join(h.dir, 'supervisor.standby'))).toBe(false);
    expect(standbys()).toEqual([]);
    cold.close();
  });

  it('leaves when its executor closes, once its attempts are done, removing its log', async () => {
    fx = new Fixture();
    await fx.executor.recover();
    await waitUntil(() => standbys().length === 1, { what: 'the standby', timeoutMs: 20_000 });
    const [busy] = standbys();
    const h = await fx.executor.start(fx.spec({ script: 'sleep 0.5; echo done' }));
    fx.executor.close();
    expect(alive(busy!)).toBe(true);
    expect(text(await collect(h), 'stdout')).toBe('done\n');
    await waitUntil(() => !alive(busy!), { what: 'the supervisor to leave after its attempt', timeoutMs: 20_000 });
    expect(readdirSync(join(fx.workDir, 'attempts')).filter((n) => n.startsWith('.standby-'))).toEqual([]);
  });

  it('on recovery, removes the log a crashed supervisor left, and keeps the one of a supervisor still running', async () => {
    fx = new Fixture();
    await fx.executor.recover();
    await waitUntil(() => standbys().length === 1, { what: 'the standby', timeoutMs: 20_000 });
    const h = await fx.executor.start(fx.spec({ script: 'echo tick; sleep 600' }));
    const running = readFileSync(join(h.dir, 'supervisor.standby'), 'utf8');
    const crashed = join(fx.workDir, 'attempts', '.standby-crashed.log');
    writeFileSync(crashed, 'FATAL ERROR: Reached heap limit\n');
    await fx.reopen().recover();
    expect(existsSync(crashed)).toBe(false);
    expect(existsSync(running)).toBe(true);
    await h.cancel(0, 'test over');
    await h.exited();
  });

  it('leaves at once when its executor closes with nothing to run', async () => {
    fx = new Fixture();
    await fx.executor.recover();
    await waitUntil(() => standbys().length === 1, { what: 'the standby', timeoutMs: 20_000 });
    const [idle] = standbys();
    fx.executor.close();
    await waitUntil(() => !alive(idle!), { what: 'the idle supervisor to leave on close', timeoutMs: 20_000 });
    expect(readdirSync(join(fx.workDir, 'attempts')).filter((n) => n.startsWith('.standby-'))).toEqual([]);
  });
});

describe('supervisor without its logger', () => {
  it('runs the job and writes its status when pino cannot be loaded (the install replaced under it)', () => {
    // The supervisor and the modules it imports statically, copied where no node_modules can be found.
    const root = mkdtempSync(join(tmpdir(), 'runmesh-nopino-'));
    try {
      const dist = join(dirname(supervisorPath()), '..', '..');
      for (const rel of [
        'agent/executor/supervisor.js',
        'agent/executor/files.js',
        'agent/executor/liveness.js',
        'agent/executor/spool-writer.js',
        'agent/executor/containment.js',
        'agent/executor/cgroup.js',
        'agent/executor/sandbox.js',
        'agent/executor/host.js',
        'agent/executor/errors.js',
        'proto/log-frame.js',
        'proto/disk-space.js',
        'proto/cause.js',
      ]) {
        mkdirSync(dirname(join(root, 'app', rel)), { recursive: true });
        copyFileSync(join(dist, rel), join(root, 'app', rel));
      }
      writeFileSync(join(root, 'app', 'package.json'), '{"type":"module"}');
      const dir = join(root, 'j_nopino.1');
      mkdirSync(dir);
      const spec = {
        jobId: 'j_nopino',
        attempt: 1,
        argv: ['sh', '-c', 'echo ran'],
        script: '',
        env: {},
        deadline: Date.now() + 60_000,
        graceSeconds: 1,
      };
      writeFileSync(join(dir, 'spec.json'), JSON.stringify(spec));
      writeFileSync(join(dir, 'output.spool'), '');
      const run = spawnSync(process.execPath, [join(root, 'app', 'agent', 'executor', 'supervisor.js'), dir], {
        cwd: dir,
        encoding: 'utf8',
        timeout: 30_000,
      });
      expect(run.status).toBe(0);
      expect(readFileSync(join(dir, 'supervisor.log'), 'utf8')).toContain('cannot load pino, log lines dropped');
      expect(JSON.parse(readFileSync(join(dir, 'status.json'), 'utf8'))).toMatchObject({ exitCode: 0, failure: 'none', records: 1 });
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
