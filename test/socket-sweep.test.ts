/**
 * Socket directories left behind (issue 16, fault 10): the WebSocket tunnel
 * (server) and bridge (agent) keep their Unix sockets in private directories
 * under the temp dir. A process that dies without removing its own leaves
 * them; a real `runmesh server` and `runmesh agent` sweep the dead ones at
 * start-up and keep the live ones. SIGHUP no longer ends them uncleanly.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, utimesSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sweepDeadPrivateDirs } from '../transport/unix-socket.js';
import { adminToken, TestClient } from './support/client.js';
import { removeDir, run, startAgent, startServer, stopAll, tempDir, waitForOutput } from './support/processes.js';
import { sleep, waitUntil } from './support/wait.js';

let root: string;
const tmpBefore = process.env.TMPDIR;
const listeners: Server[] = [];

beforeAll(async () => {
  root = await tempDir('runmesh-sweep-');
  process.env.TMPDIR = root; // the processes started here make (and sweep) their socket dirs in ours
});

afterAll(async () => {
  await stopAll();
  for (const l of listeners) l.close();
  if (tmpBefore === undefined) delete process.env.TMPDIR;
  else process.env.TMPDIR = tmpBefore;
  await removeDir(root);
});

/** A pid that no process has: one that has just exited. */
function deadPid(): number {
  const pid = spawnSync('true').pid;
  if (!pid) throw new Error('could not run true');
  return pid;
}

/** What a process killed with SIGKILL leaves: its socket directory, with the socket file nobody listens on. */
async function leftByKill9(prefix: 'tunnel' | 'bridge', sock: string): Promise<string> {
  const child = spawn(
    process.execPath,
    ['-e', 'require("net").createServer().listen(process.argv[1], () => console.log("up"))', join(root, 'tmp.sock')],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  await new Promise((resolve) => child.stdout.once('data', resolve));
  const dir = join(root, `runmesh-${prefix}-${child.pid}-k9k9k9`);
  mkdirSync(dir);
  child.kill('SIGKILL');
  await new Promise((resolve) => child.once('exit', resolve));
  // The socket file outlived its process; moved into the dir named after that (now dead) pid.
  spawnSync('mv', [join(root, 'tmp.sock'), join(dir, sock)]);
  expect(readdirSync(dir)).toEqual([sock]);
  return dir;
}

function listenIn(dir: string, sock: string): Promise<void> {
  mkdirSync(dir);
  const server = createServer();
  listeners.push(server);
  return new Promise((resolve) => server.listen(join(dir, sock), resolve));
}

function oldDir(name: string): string {
  const dir = join(root, name);
  mkdirSync(dir);
  const past = new Date(Date.now() - 5 * 60_000);
  utimesSync(dir, past, past);
  return dir;
}

describe('socket directories of dead processes', () => {
  it('are swept at start-up by the server and the agent; live ones are kept; SIGHUP leaves both running', async () => {
    const deadTunnel = await leftByKill9('tunnel', 'grpc.sock');
    const deadBridge = await leftByKill9('bridge', 'bridge.sock');
    const deadEmpty = join(root, `runmesh-tunnel-${deadPid()}-abcdef`);
    mkdirSync(deadEmpty);
    const legacyDead = oldDir('runmesh-bridge-Zz09Aa'); // an older runmesh's dir: no pid, nothing listening, old
    const legacyFresh = join(root, 'runmesh-tunnel-Qq12Ww'); // maybe being set up right now: kept
    mkdirSync(legacyFresh);
    const live = join(root, `runmesh-tunnel-${process.pid}-livexx`); // our pid: alive
    mkdirSync(live);
    // A dead-looking pid (another pid namespace) whose socket answers: its owner lives, kept.
    const otherNamespace = join(root, `runmesh-bridge-${deadPid()}-nsnsns`);
    await listenIn(otherNamespace, 'bridge.sock');
    const notOurs = join(root, 'runmesh-tunnelish-1-abcdef'); // not a name we make
    mkdirSync(notOurs);

    const server = await startServer();
    await waitForOutput(server, /removed socket directories left by dead processes/);
    for (const d of [deadTunnel, deadEmpty, legacyDead]) expect(existsSync(d), d).toBe(false);
    for (const d of [live, legacyFresh, otherNamespace, notOurs]) expect(existsSync(d), d).toBe(true);

    // The server's own tunnel dir, named with its pid.
    const ownTunnel = (): string[] => readdirSync(root).filter((n) => n.startsWith(`runmesh-tunnel-${server.proc.pid}-`));
    expect(ownTunnel()).toHaveLength(1);

    // The agent over ws: its bridge dir; and its start-up sweep finds the bridge dir killed above, if the server's did not.
    const agent = await startAgent(`ws://${server.http}/agent`, { name: 'sweeper' });
    const client = new TestClient(server.address, adminToken(server.dataDir));
    await client.waitAgents(1);
    expect(existsSync(deadBridge)).toBe(false);
    const ownBridge = (): string[] => readdirSync(root).filter((n) => n.startsWith(`runmesh-bridge-${agent.proc.pid}-`));
    expect(ownBridge()).toHaveLength(1);

    // SIGHUP: nothing to reload; both keep running (the default action would have ended them, leaving their dirs).
    server.proc.kill('SIGHUP');
    agent.proc.kill('SIGHUP');
    await waitForOutput(server, /SIGHUP: nothing to reload/);
    await waitForOutput(agent, /SIGHUP: nothing to reload/);
    await sleep(300); // to show that SIGHUP did not end either process
    expect(server.proc.exitCode).toBeNull();
    expect(agent.proc.exitCode).toBeNull();
    const j = await client.submit({ script: 'echo after hup' });
    expect((await client.waitDone(j.id)).exitCode).toBe(0);
    client.close();

    // A clean stop removes its own dir; a kill -9 leaves one, which the next start sweeps.
    const stopped = await agent.stop('SIGTERM', 30_000); // drains first; a runner busy with other suites was seen to take over 15 s
    expect({ stopped, output: agent.output().slice(-3000) }).toMatchObject({ stopped: 0 });
    expect(ownBridge()).toHaveLength(0);
    await server.kill9();
    expect(ownTunnel()).toHaveLength(1);
    const next = await startServer();
    await waitUntil(() => ownTunnel().length === 0, { what: 'the killed server’s tunnel dir to be swept' });
    await next.stop('SIGTERM');
    for (const d of [live, legacyFresh, otherNamespace, notOurs]) expect(existsSync(d), d).toBe(true);
  });

  it('runmesh dev stops cleanly on SIGHUP (its terminal went away), removing its socket directory', async () => {
    const dataDir = await tempDir('runmesh-dev-hup-');
    const dev = run(['dev', '--agents', '1', '--data-dir', dataDir, '--listen', '127.0.0.1:0', '--http-listen', '127.0.0.1:0'], {
      RUNMESH_CONFIG: join(dataDir, 'config.json'), // dev saves a context: not in this user's own file
    });
    await waitForOutput(dev, /runmesh dev: control plane on/, 45_000);
    const own = (): string[] => readdirSync(root).filter((n) => n.startsWith(`runmesh-tunnel-${dev.proc.pid}-`));
    expect(own()).toHaveLength(1);
    const code = await dev.stop('SIGHUP');
    expect({ code, signal: dev.proc.signalCode, output: dev.output().slice(-2000) }).toMatchObject({ code: 0 });
    expect(dev.output()).toMatch(/runmesh dev: stopping/);
    expect(own()).toHaveLength(0);
  });

  it('leaves directories it cannot judge alone (unit)', async () => {
    const dir = await tempDir('runmesh-sweep-unit-');
    const deadDir = join(dir, `runmesh-bridge-${deadPid()}-uuuuuu`);
    mkdirSync(deadDir);
    const file = join(dir, `runmesh-tunnel-${deadPid()}-ffffff`);
    spawnSync('touch', [file]); // a file, not a directory: not ours to remove
    expect(await sweepDeadPrivateDirs(dir)).toEqual([deadDir]);
    expect(existsSync(file)).toBe(true);
    expect(await sweepDeadPrivateDirs(join(dir, 'missing'))).toEqual([]);
  });
});
