/** `runmesh agents ls | get | drain | cordon | uncordon | revoke | rotate`. */
import type { Command } from 'commander';
import { Agent } from '../../proto/gen/runmesh/v1/cluster.js';
import type { Resources } from '../../proto/gen/runmesh/v1/job.js';
import { type Connection, unary, withConnection } from '../client.js';
import { relativeTime } from '../duration.js';
import { colourFor } from '../colour.js';
import { agentStateName, executorName, keyValues, mebibytes, printJson, stateColumn, table } from '../format.js';
import { serverOption, tokenOption } from '../options.js';
import { CliError } from '../errors.js';

interface ReadOptions {
  server: string;
  json?: boolean;
}

/** The three operator actions on one agent, by RPC. */
const ACTIONS = {
  drain: 'stop sending work to the agent and let it finish what it runs',
  cordon: 'stop sending work to the agent; running work is untouched',
  uncordon: 'let the agent take work again',
} as const;

export function registerAgents(program: Command): void {
  const agents = program.command('agents').description('list, inspect, drain, cordon and revoke agents');
  agents
    .command('ls')
    .description('list agents')
    .addOption(serverOption())
    .addOption(tokenOption())
    .option('--json', 'print a JSON array of agents')
    .action((options: ReadOptions) => ls(options));
  agents
    .command('get')
    .description('show one agent')
    .argument('<name>', 'agent name')
    .addOption(serverOption())
    .addOption(tokenOption())
    .option('--json', 'print the agent as JSON')
    .action((name: string, options: ReadOptions) => get(name, options));
  for (const [action, description] of Object.entries(ACTIONS) as [keyof typeof ACTIONS, string][]) {
    agents
      .command(action)
      .description(description)
      .argument('<name>', 'agent name')
      .addOption(serverOption())
      .addOption(tokenOption())
      .option('--json', 'print the agent as JSON')
      .action((name: string, options: ReadOptions) => act(action, name, options));
  }
  agents
    .command('revoke')
    .description(
      "delete the agent's credential: its stream is ended within a second, it cannot reconnect, and its running jobs are handled as lost. " +
        'To enrol it again, delete the file "credential" in its work dir and restart it with the join token',
    )
    .argument('<name>', 'agent name')
    .addOption(serverOption())
    .addOption(tokenOption())
    .option('--json', 'print {"name","revoked"} as JSON')
    .action((name: string, options: ReadOptions) => revoke(name, options));
  agents
    .command('rotate')
    .description(
      'give the agent a new credential over its stream, with no downtime: the old one stops working once the agent has saved the new one. ' +
        'An agent that is not connected gets it when it next connects',
    )
    .argument('<name>', 'agent name')
    .addOption(serverOption())
    .addOption(tokenOption())
    .option('--json', 'print {"name","rotated"} as JSON (rotated: false while the agent has yet to take its new credential)')
    .action((name: string, options: ReadOptions) => rotate(name, options));
}

async function rotate(name: string, target: ReadOptions): Promise<void> {
  const res = await withConnection(target, (conn) =>
    unary(conn, 'ClusterService.RotateAgent', conn.cluster.rotateAgent.bind(conn.cluster), { name }),
  );
  if (!res.requested) throw new CliError(`${name} has no credential to rotate (never enrolled, or revoked)`);
  if (target.json) return printJson({ name, rotated: res.rotated });
  process.stdout.write(
    res.rotated
      ? `${name} rotated: it saved its new credential\n`
      : `${name}: rotation requested; it takes its new credential when it next connects\n`,
  );
}

async function revoke(name: string, target: ReadOptions): Promise<void> {
  const res = await withConnection(target, (conn) =>
    unary(conn, 'ClusterService.RevokeAgent', conn.cluster.revokeAgent.bind(conn.cluster), { name }),
  );
  if (target.json) return printJson({ name, revoked: res.revoked });
  process.stdout.write(res.revoked ? `${name} revoked\n` : `${name} had no credential (nothing to revoke)\n`);
}

async function ls(options: ReadOptions): Promise<void> {
  const res = await withConnection(options, (conn) =>
    unary(conn, 'ClusterService.ListAgents', conn.cluster.listAgents.bind(conn.cluster), {}),
  );
  if (options.json) return printJson(res.agents.map((a) => Agent.toJSON(a)));
  const now = Date.now();
  const rows = res.agents.map((a) => [
    a.name,
    agentStateName(a.state),
    String(a.running),
    `${a.free?.slots ?? 0}/${a.capacity?.slots ?? 0}`,
    a.load.toFixed(2),
    a.peer || '-',
    a.version || '-',
    relativeTime(a.lastHeartbeat, now),
  ]);
  const header = ['NAME', 'STATE', 'RUNNING', 'FREE/SLOTS', 'LOAD', 'PEER', 'VERSION', 'HEARTBEAT'];
  process.stdout.write(`${table(header, rows, stateColumn(1, colourFor(process.stdout)))}\n`);
}

async function get(name: string, options: ReadOptions): Promise<void> {
  const res = await withConnection(options, (conn) =>
    unary(conn, 'ClusterService.GetAgent', conn.cluster.getAgent.bind(conn.cluster), { name }),
  );
  if (!res.agent) throw new Error(`ClusterService.GetAgent returned no agent for ${name}`);
  if (options.json) return printJson(Agent.toJSON(res.agent));
  process.stdout.write(`${agentPage(res.agent, Date.now())}\n`);
}

function agentPage(a: Agent, now: number): string {
  const labels = Object.entries(a.labels)
    .sort(([x], [y]) => x.localeCompare(y))
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
  return keyValues([
    ['name', a.name],
    ['state', agentStateName(a.state)],
    ['unhealthy', a.unhealthy || undefined],
    ['hostname', a.hostname || undefined],
    ['labels', labels || '-'],
    ['containment', a.containment || '-'],
    ['executors', a.executors.length > 0 ? a.executors.map(executorName).join(', ') : 'shell (advertises none)'],
    ['capacity', resources(a.capacity)],
    ['free', resources(a.free)],
    ['running', String(a.running)],
    ['load', a.load.toFixed(2)],
    ['cache', cacheLine(a)],
    ['peer', a.peer || undefined],
    ['version', a.version || undefined],
    ['connected', relativeTime(a.connectedAt, now)],
    ['heartbeat', relativeTime(a.lastHeartbeat, now)],
  ]);
}

/** The job cache as its heartbeat said: size, entries and the share of restores that found their key. */
function cacheLine(a: Agent): string | undefined {
  if (a.cacheBytes === undefined) return undefined;
  const hits = a.cacheHits ?? 0;
  const tries = hits + (a.cacheMisses ?? 0);
  const rate = tries > 0 ? `${Math.round((100 * hits) / tries)}% hit rate (${hits} of ${tries} restores)` : 'no restores yet';
  return `${mebibytes(a.cacheBytes)}, ${a.cacheEntries ?? 0} entries, ${rate}`;
}

function resources(r: Resources | undefined): string {
  if (!r) return '-';
  return `${r.slots} slots, ${r.cpuMillis}m cpu, ${r.memoryMb} MB`;
}

async function act(action: keyof typeof ACTIONS, name: string, target: ReadOptions): Promise<void> {
  const res = await withConnection(target, (conn) => callAction(conn, action, name));
  if (target.json) return printJson(res.agent ? Agent.toJSON(res.agent) : { name, action });
  process.stdout.write(res.agent ? `${res.agent.name} ${agentStateName(res.agent.state)}\n` : `${name} ${action}ed\n`);
}

function callAction(conn: Connection, action: keyof typeof ACTIONS, name: string): Promise<{ agent: Agent | undefined }> {
  const c = conn.cluster;
  switch (action) {
    case 'drain':
      return unary(conn, 'ClusterService.Drain', c.drain.bind(c), { name });
    case 'cordon':
      return unary(conn, 'ClusterService.Cordon', c.cordon.bind(c), { name });
    case 'uncordon':
      return unary(conn, 'ClusterService.Uncordon', c.uncordon.bind(c), { name });
  }
}
