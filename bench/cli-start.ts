/**
 * How long a client command takes as a whole process (issue 19: at most
 * 250 ms): `runmesh --version` and `runmesh jobs ls` against a real server,
 * beside `node -e 0` measured in the same run, the floor no Node program goes
 * under. The three run in turn, so a machine that slows down mid-run slows all
 * three; the ratio to the floor is the figure that carries across machines.
 */
import { spawnSync } from 'node:child_process';
import { adminToken } from '../test/support/client.js';
import { CLI, startServer } from '../test/support/processes.js';
import { line, round } from './stats.js';

const RUNS = 15;

function wallMs(args: string[], env: NodeJS.ProcessEnv): number {
  const start = process.hrtime.bigint();
  const res = spawnSync(process.execPath, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
  if (res.status !== 0) throw new Error(`${args.join(' ')} exited ${res.status}: ${res.stderr.toString().slice(0, 500)}`);
  return Number(process.hrtime.bigint() - start) / 1e6;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

export async function benchCliStart(): Promise<void> {
  const server = await startServer({ args: ['--log-level', 'warn'] });
  // A config-free environment: no context file of the user's is read.
  const env = { ...process.env, RUNMESH_TOKEN: adminToken(server.dataDir), HOME: server.dataDir, XDG_CONFIG_HOME: server.dataDir };
  const commands: Record<string, string[]> = {
    'node -e 0': ['-e', '0'],
    'runmesh --version': [CLI, '--version'],
    'runmesh jobs ls': [CLI, 'jobs', 'ls', '--server', server.address],
  };
  const samples = new Map<string, number[]>(Object.keys(commands).map((k) => [k, []]));
  for (const args of Object.values(commands)) wallMs(args, env); // warm the page cache
  for (let i = 0; i < RUNS; i++) for (const [name, args] of Object.entries(commands)) samples.get(name)!.push(wallMs(args, env));
  const floor = median(samples.get('node -e 0')!);
  for (const [name, xs] of samples) {
    line(`cli start: ${name}`, { median_ms: round(median(xs), 1), min_ms: round(Math.min(...xs), 1), vs_node: round(median(xs) / floor) });
  }
  await server.stop();
}
