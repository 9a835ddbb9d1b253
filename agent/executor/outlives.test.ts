/** The job outlives the agent: a later agent process recovers attempts, streams them from disk, and spots lost ones. */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { collect, Fixture, groupGone, pgidOf, supervisorPidOf } from './testdata/fixture.js';
import { alive, groupMembers, pidsWithArgPrefix } from './testdata/proc.js';
import { waitUntil } from '../../test/support/wait.js';

const AGENT = fileURLToPath(new URL('./testdata/start-and-die.mjs', import.meta.url));

let fx: Fixture;
let agent: ChildProcess | undefined;
afterEach(async () => {
  agent?.kill('SIGKILL');
  agent = undefined;
  await fx.cleanup();
});

/** Runs the throwaway agent and resolves with the attempt dir once it has read a few records. */
async function startInChild(jobId: string, script: string): Promise<string> {
  const child = spawn(process.execPath, [AGENT, fx.workDir, jobId, script], { stdio: ['ignore', 'pipe', 'inherit'] });
  agent = child;
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  await waitUntil(() => out.includes('reading\n') || child.exitCode !== null, {
    what: 'the child agent to start the attempt and read from it',
    timeoutMs: 20_000,
  });
  const first = out.split('\n')[0] ?? '';
  expect(out).toContain('reading\n');
  return (JSON.parse(first) as { dir: string }).dir;
}

async function killAgent(): Promise<void> {
  const child = agent!;
  child.kill('SIGKILL');
  if (child.exitCode === null && child.signalCode === null) await once(child, 'exit');
}

describe('after the agent is SIGKILLed', () => {
  it('the job runs on, and a fresh executor recovers it and reads every line once, in order', async () => {
    fx = new Fixture();
    const n = 100;
    const jobId = 'j_outlives';
    const dir = await startInChild(jobId, `i=1; while [ $i -le ${n} ]; do echo "line $i"; i=$((i+1)); sleep 0.02; done`);
    await killAgent();
    const supervisor = supervisorPidOf(dir);
    // The agent's supervisor runs the attempt on (its input closed, it leaves once the attempt is done).
    expect(pidsWithArgPrefix(join(fx.workDir, 'attempts', '.standby-'))).toEqual([supervisor]);
    expect(existsSync(join(dir, 'status.json'))).toBe(false); // it was mid-run when the agent died
    const token = readFileSync(join(dir, 'supervisor.standby'), 'utf8');

    const handles = await fx.reopen().recover();
    expect(handles.map((h) => [h.jobId, h.attempt, h.dir])).toEqual([[jobId, 1, dir]]);
    const h = handles[0]!;
    const records = await collect(h);
    const lines = Buffer.concat(records.map((r) => r.data))
      .toString()
      .split('\n')
      .filter(Boolean);
    expect(lines).toEqual(Array.from({ length: n }, (_, i) => `line ${i + 1}`));
    expect(records.map((r) => r.seq)).toEqual(records.map((_, i) => i));
    expect(await h.exited()).toMatchObject({ exitCode: 0, failure: 'none', records: records.length });
    await waitUntil(() => !alive(supervisor), { what: 'the supervisor to exit', timeoutMs: 20_000 });
    expect(existsSync(token)).toBe(false); // its own log, removed as it left in order
  });

  it('a fresh executor can cancel the job the dead agent started', async () => {
    fx = new Fixture();
    const dir = await startInChild('j_orphan', 'echo tick; sleep 600');
    await killAgent();
    const pgid = pgidOf(dir);
    const [h] = await fx.reopen().recover();
    await h!.cancel(1, 'agent restarted');
    expect(await h!.exited()).toMatchObject({ failure: 'cancelled' });
    expect(groupMembers(pgid)).toEqual([]);
  });
});

describe('a lost attempt', () => {
  it('resolves agent_lost, stably, when supervisor and job were SIGKILLed', async () => {
    fx = new Fixture();
    const h = await fx.executor.start(fx.spec({ script: 'echo hello; sleep 600' }));
    await waitUntil(() => pgidOf(h.dir) > 0 && groupMembers(pgidOf(h.dir)).length > 0, { what: 'the job to run', timeoutMs: 20_000 });
    await waitUntil(async () => (await collectOne(h)) === 'hello\n', { what: 'the first line', timeoutMs: 20_000 });
    const pgid = pgidOf(h.dir);
    process.kill(supervisorPidOf(h.dir), 'SIGKILL');
    process.kill(-pgid, 'SIGKILL');
    const s = await h.exited();
    expect(s).toMatchObject({ failure: 'agent_lost', records: 1 });
    const [again] = await fx.reopen().recover();
    expect(await again!.exited()).toEqual(s);
    expect((await collect(h)).map((r) => r.data.toString())).toEqual(['hello\n']);
  });

  it('kills the job its SIGKILLed supervisor left behind, so nothing is orphaned', async () => {
    fx = new Fixture();
    const h = await fx.executor.start(fx.spec({ script: 'sleep 600 & sleep 600' }));
    await waitUntil(() => pgidOf(h.dir) > 0 && groupMembers(pgidOf(h.dir)).length >= 2, { what: 'the job to run', timeoutMs: 20_000 });
    const pgid = pgidOf(h.dir);
    process.kill(supervisorPidOf(h.dir), 'SIGKILL');
    expect((await h.exited()).failure).toBe('agent_lost');
    await waitUntil(() => groupGone(pgid), { what: 'the job group to go', timeoutMs: 20_000 });
  });
});

async function collectOne(h: Parameters<typeof collect>[0]): Promise<string> {
  const ac = new AbortController();
  for await (const r of h.records(0, ac.signal)) {
    ac.abort();
    return r.data.toString();
  }
  return '';
}
