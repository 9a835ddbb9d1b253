/**
 * A leader paused for longer than its TTL (SIGSTOP), in its own process, while
 * another peer takes over: once resumed it must not believe it leads, not even
 * for the moment before it hears from etcd, and its fenced writes must fail.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEtcd, type TestEtcd } from '../../test/support/etcd.js';
import { repoRoot } from '../paths.js';
import { openEtcdStore, type EtcdStore } from '../store/etcd.js';
import { LeaderElection, leaderFence } from './election.js';
import { PeerMembership } from './membership.js';
import { sleep, waitUntil } from '../../test/support/wait.js';

const ROOT = repoRoot();
const SCRIPT = path.join(ROOT, 'dist', 'control-plane', 'mesh', 'testdata', 'campaigner.js');
const TTL_SECONDS = 1;

interface Line {
  isLeader: boolean;
  term?: number;
  leader: string | null;
  noticed: boolean;
  resumed: boolean;
  event?: string;
  succeeded?: boolean | null;
  fencedTerm?: number;
  pausedMs?: number;
}

let etcd: TestEtcd;
let child: ChildProcess | undefined;
const closers: (() => Promise<void>)[] = [];

beforeAll(async () => {
  // `npm test` builds first. Building here too rewrote dist/ under the processes other files were starting.
  if (!existsSync(SCRIPT)) throw new Error(`${SCRIPT} is not built: run npm run build (npm test does)`);
  etcd = await startEtcd();
}, 300_000);

afterAll(async () => {
  if (child && child.exitCode === null && child.signalCode === null) {
    child.kill('SIGCONT');
    child.kill('SIGKILL');
  }
  for (const c of closers.reverse()) await c();
  await etcd?.stop();
});

function spawnCampaigner(prefix: string): { proc: ChildProcess; lines: Line[]; stderr: () => string } {
  const proc = spawn(process.execPath, [SCRIPT], {
    cwd: ROOT,
    env: {
      ...process.env,
      RUNMESH_ETCD: etcd.endpoint,
      RUNMESH_PREFIX: prefix,
      RUNMESH_PEER_ID: 'paused',
      RUNMESH_TTL: String(TTL_SECONDS),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Line[] = [];
  let partial = '';
  let err = '';
  proc.stdout?.on('data', (d: Buffer) => {
    partial += d.toString();
    const parts = partial.split('\n');
    partial = parts.pop() ?? '';
    for (const p of parts) if (p.trim()) lines.push(JSON.parse(p) as Line);
  });
  proc.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  return { proc, lines, stderr: () => err };
}

describe('LeaderElection across a process pause', () => {
  it('a leader paused past its TTL resumes as a non-leader and its fenced writes fail', async () => {
    const prefix = `/t-${randomUUID()}/`;
    const c = spawnCampaigner(prefix);
    child = c.proc;
    await waitUntil(() => c.lines.some((l) => l.isLeader), {
      what: 'the child to lead',
      timeoutMs: 15_000,
      show: () => `stderr: ${c.stderr()}`,
    });
    const term = c.lines.find((l) => l.isLeader)!.term!;

    const store: EtcdStore = await openEtcdStore({ endpoints: [etcd.endpoint], prefix });
    closers.push(() => store.close());
    const membership = await PeerMembership.join(store, {
      peerId: 'other',
      grpcAddress: 'other:1',
      httpAddress: 'other:2',
      ttlSeconds: TTL_SECONDS,
    });
    const election = await LeaderElection.start(store, {
      peerId: 'other',
      grpcAddress: 'other:1',
      lease: membership.lease,
      ttlSeconds: TTL_SECONDS,
    });
    closers.push(async () => {
      await election.close();
      await membership.close();
    });
    await sleep(300); // deliberate: its first campaign runs, and must not win while the paused peer leads
    expect(election.isLeader()).toBe(false);
    expect(election.leader()?.peerId).toBe('paused');

    const stoppedAt = Date.now();
    c.proc.kill('SIGSTOP');
    await waitUntil(() => election.isLeader(), { what: 'the other peer to take over', timeoutMs: 10_000 });
    const takeover = Date.now() - stoppedAt;
    expect(election.term).toBeGreaterThan(term);
    // Stay stopped well past the TTL.
    await sleep(Math.max(0, 2_500 - takeover));
    const before = c.lines.length;
    c.proc.kill('SIGCONT');

    await waitUntil(() => c.lines.some((l) => l.resumed && l.noticed), {
      what: 'the child to notice its lease is gone',
      timeoutMs: 10_000,
    });
    await waitUntil(() => c.lines.some((l) => l.event === 'fenced write'), { what: 'the child fenced write', timeoutMs: 10_000 });
    await sleep(300); // deliberate: the child runs on a while, and must never claim to lead again
    const resumed = c.lines.filter((l) => l.resumed);
    const first = resumed[0]!;
    console.log(
      `takeover after ${takeover} ms; child paused ${first.pausedMs} ms; first line after resume: ${JSON.stringify(first)}; ` +
        `${resumed.filter((l) => !l.noticed).length} resumed line(s) before it noticed, ${resumed.filter((l) => l.noticed).length} after`,
    );
    expect(c.lines.length).toBeGreaterThan(before);
    expect(first.event).toBe('resumed');
    expect(resumed.every((l) => !l.isLeader)).toBe(true);
    expect(c.lines.find((l) => l.event === 'fenced write')).toMatchObject({ fencedTerm: term, succeeded: false });
    // The same write fenced with the old term fails from here too; the new leader's succeeds.
    const write = (t: number) => store.txn({ compare: [leaderFence(t)], success: [{ type: 'put', key: '/runmesh/fenced', value: 'x' }] });
    expect((await write(term)).succeeded).toBe(false);
    expect((await write(election.term!)).succeeded).toBe(true);
    expect(election.isLeader()).toBe(true);
  });
});
