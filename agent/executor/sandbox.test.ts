/** The sandbox with real bwrap and real processes: what a job can see, write, reach and leave behind. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { detectSandbox, probeSandbox, sandboxArgv, type SandboxOptions } from './sandbox.js';
import { alive } from './testdata/proc.js';
import { waitUntil } from '../../test/support/wait.js';

const support = detectSandbox();
const bwrap = support.available ? support.bwrap : '';
const missing = !support.available;
const SKIP = ' (skipped: bubblewrap not installed)';
const JOB_TIMEOUT_MS = 20_000;
const NOBODY = 65534;

interface Ran {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs argv in the sandbox (spawned detached, as the supervisor does) and collects its output; SIGKILLs it after JOB_TIMEOUT_MS. */
function run(o: SandboxOptions, argv: readonly string[], env: Record<string, string> = {}): Promise<Ran> {
  const [cmd = '', ...args] = sandboxArgv(o, argv);
  const child = spawn(cmd, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), JOB_TIMEOUT_MS);
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

let root: string;
let agentDir: string;
let workspace: string;
let secretDir: string;
const opts = (more: Partial<SandboxOptions> = {}): SandboxOptions => ({
  bwrap,
  workspace,
  hide: [agentDir],
  readOnly: [],
  network: true,
  ...more,
});

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'runmesh-sandbox-'));
  // The agent's work dir holds its credential and, deeper, the attempt's workspace.
  agentDir = join(root, 'agent');
  workspace = join(agentDir, 'attempts', 'job1.1', 'work');
  mkdirSync(workspace, { recursive: true, mode: 0o700 });
  writeFileSync(join(agentDir, 'credential'), 'agent-credential\n', { mode: 0o600 });
  mkdirSync(join(agentDir, 'attempts', 'job0.1', 'work'), { recursive: true });
  secretDir = mkdtempSync(join(tmpdir(), 'runmesh-sandbox-secret-'));
  writeFileSync(join(secretDir, 'secret'), 'host-secret\n');
});

afterEach(() => {
  rmSync(root, { recursive: true, force: true });
  rmSync(secretDir, { recursive: true, force: true });
});

describe('sandbox', () => {
  it.skipIf(missing)(`writes in its workspace and nowhere else${missing ? SKIP : ''}`, async () => {
    const r = await run(opts(), [
      'sh',
      '-c',
      'echo made > out.txt && pwd; touch /usr/x 2>/dev/null && echo usr-writable; touch /etc/x 2>/dev/null && echo etc-writable; touch /x 2>/dev/null && echo root-writable; echo t > /tmp/t && echo tmp-ok',
    ]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(`${workspace}\ntmp-ok\n`);
    expect(r.code).toBe(0);
    expect(readFileSync(join(workspace, 'out.txt'), 'utf8')).toBe('made\n');
  });

  it.skipIf(missing)(`cannot read outside its workspace, nor the agent's credential${missing ? SKIP : ''}`, async () => {
    // `root` shown read-only puts the agent's dir under a bind: only `hide` keeps the credential out, and the workspace must stay on top.
    const script = [
      `cat ${join(secretDir, 'secret')} 2>/dev/null && echo secret-read`,
      `cat ${join(agentDir, 'credential')} 2>/dev/null && echo credential-read`,
      `ls -A ${agentDir} | grep -vx attempts && echo agent-dir-listed`,
      `ls ${join(agentDir, 'attempts', 'job0.1')} 2>/dev/null && echo other-attempt-seen`,
      `cat /etc/shadow | grep . && echo shadow-read`,
      'for d in /root /home /var /srv /work /mnt /sys /run/netns; do test -e $d && echo "$d visible"; done',
      `cd ${workspace} && echo w > w && echo workspace-ok`,
    ].join('; ');
    const r = await run(opts({ readOnly: [root] }), ['sh', '-c', script]);
    expect(r.stdout).toBe('workspace-ok\n');
    expect(readFileSync(join(workspace, 'w'), 'utf8')).toBe('w\n');
  });

  it.skipIf(missing || process.getuid?.() !== 0)(`runs as a job user who owns only the workspace${missing ? SKIP : ''}`, async () => {
    chownSync(workspace, NOBODY, NOBODY);
    chmodSync(root, 0o755); // shown as on the host (like /opt); the agent's dir under it is hidden, whatever its mode
    const script = `id -u; cd ${workspace} && touch mine && echo ok; cat ${join(agentDir, 'credential')} 2>/dev/null; grep CapEff /proc/self/status`;
    const r = await run(opts({ readOnly: [root], user: { uid: NOBODY, gid: NOBODY } }), ['sh', '-c', script]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(`${NOBODY}\nok\nCapEff:\t0000000000000000\n`);
    expect(existsSync(join(workspace, 'mine'))).toBe(true);
  });

  it.skipIf(missing)(`has its own PID namespace${missing ? SKIP : ''}`, async () => {
    const r = await run(opts(), ['sh', '-c', 'echo $$; ls /proc | grep -c "^[0-9]"']);
    const [pid = 0, count = 0] = r.stdout.trim().split('\n').map(Number);
    expect(pid).toBeLessThanOrEqual(3);
    expect(count).toBeLessThanOrEqual(5); // bwrap's init, sh, ls, grep
  });

  describe('network', () => {
    let server: Server;
    let port: number;
    beforeEach(async () => {
      server = createServer((s) => s.end('hello\n'));
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const addr = server.address();
      port = typeof addr === 'object' && addr !== null ? addr.port : 0;
    });
    afterEach(async () => {
      await new Promise((resolve) => server.close(resolve));
    });
    const connect = (): string[] => [
      process.execPath,
      '-e',
      `const s = require('net').connect(${port}, '127.0.0.1');
       s.setTimeout(5000, () => { console.log('timeout'); process.exit(2); });
       s.on('data', (d) => { process.stdout.write(d); process.exit(0); });
       s.on('error', (e) => { console.log(e.code); process.exit(1); });`,
    ];

    it.skipIf(missing)(`with network=false cannot reach the host's loopback${missing ? SKIP : ''}`, async () => {
      const r = await run(opts({ network: false }), connect());
      expect(r.stdout.trim()).toMatch(/^(ECONNREFUSED|ENETUNREACH|EADDRNOTAVAIL|timeout)$/);
      expect(r.code).not.toBe(0);
    });

    it.skipIf(missing)(`with network=true reaches it${missing ? SKIP : ''}`, async () => {
      const r = await run(opts({ network: true }), connect());
      expect(r.stdout).toBe('hello\n');
      expect(r.code).toBe(0);
    });
  });

  describe('signals', () => {
    const marker = `RUNMESH_SANDBOX_TEST=${randomUUID()}`;
    /** Host pids of the job's `sleep`s: processes whose environment carries the marker. */
    const sleepers = (): number[] =>
      readdirSync('/proc')
        .filter((d) => /^\d+$/.test(d))
        .filter((pid) => {
          try {
            const argv0 = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0];
            return argv0 === 'sleep' && readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(marker);
          } catch {
            return false; // gone meanwhile
          }
        })
        .map(Number);
    const [name = '', value = ''] = marker.split('=');

    it.skipIf(missing)(`SIGKILL to the outer bwrap leaves nothing of the job, setsid or not${missing ? SKIP : ''}`, async () => {
      const ran = run(opts(), ['sh', '-c', 'sleep 300 & setsid sleep 300 & wait'], { [name]: value });
      const pids = await waitUntil(() => sleepers().length === 2 && sleepers(), { what: "the job's two sleeps" });
      const bwrapPid = bwrapOf(pids[0] ?? 0);
      process.kill(bwrapPid, 'SIGKILL');
      const r = await ran;
      expect(r.signal).toBe('SIGKILL');
      await waitUntil(() => pids.every((p) => !alive(p)) && sleepers().length === 0, {
        what: "the job's sleeps to be gone",
        timeoutMs: 5_000,
        show: () => ({ pids, left: sleepers() }),
      });
    });

    it.skipIf(missing)(`SIGTERM to the group reaches the job, which gets its grace${missing ? SKIP : ''}`, async () => {
      const script = 'trap "sleep 0.3; echo graceful; exit 7" TERM; sleep 300 & wait';
      const ran = run(opts(), ['sh', '-c', script], { [name]: value });
      const [sleep = 0] = await waitUntil(() => sleepers().length === 1 && sleepers(), { what: "the job's sleep" });
      process.kill(-bwrapOf(sleep), 'SIGTERM');
      const r = await ran;
      expect(r.stdout).toBe('graceful\n');
      expect(r.code).toBe(7);
      await waitUntil(() => !alive(sleep), { what: 'the leftover sleep to be gone', timeoutMs: 5_000 });
    });
  });

  describe('detection', () => {
    it.skipIf(missing)(`reports bubblewrap available here${missing ? SKIP : ''}`, () => {
      expect(support).toMatchObject({ available: true, bwrap: expect.stringMatching(/bwrap$/) as string });
      expect(JSON.parse(JSON.stringify(support))).toEqual(support);
    });

    it('reports why for a bwrap that is not there', () => {
      const r = probeSandbox('/nonexistent/bwrap');
      expect(r.available).toBe(false);
      expect(r.available ? '' : r.reason).toMatch(/ENOENT/);
    });
  });
});

/** The outer bwrap of a job process: its process group's leader, the pid the supervisor spawned. */
function bwrapOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[2]); // state, ppid, pgrp
}
