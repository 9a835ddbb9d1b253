/** `runmesh cluster status`: peers, leader, agents by state, queues by QoS, jobs by state, stuck jobs. */
import type { Command } from 'commander';
import { StatusResponse } from '../../proto/gen/runmesh/v1/cluster.js';
import { unary, withConnection } from '../client.js';
import { indent, keyValues, printJson, qosName, table } from '../format.js';
import { serverOption, tokenOption } from '../options.js';

export function registerCluster(program: Command): void {
  const cluster = program.command('cluster').description('cluster health');
  cluster
    .command('status')
    .description('peers, leader, agents, queue depth and stuck jobs')
    .addOption(serverOption())
    .addOption(tokenOption())
    .option('--json', 'print the status as JSON')
    .action((options: { server: string; json?: boolean }) => status(options));
}

async function status(options: { server: string; json?: boolean }): Promise<void> {
  const res = await withConnection(options, (conn) => unary(conn, 'ClusterService.Status', conn.cluster.status.bind(conn.cluster), {}));
  if (options.json) return printJson(StatusResponse.toJSON(res));
  process.stdout.write(`${statusPage(res)}\n`);
}

/** The human page; sections with nothing to say are left out, except the ones whose emptiness is news. */
export function statusPage(s: StatusResponse): string {
  const sections = [
    keyValues([
      ['leader', s.leader || 'none elected'],
      ['version', s.version || undefined],
      ['agents', counts(s.agentsByState)],
      ['jobs', counts(s.jobsByState)],
    ]),
  ];
  if (s.peers.length > 0) {
    const rows = s.peers.map((p) => [p.id, p.address, p.leader ? 'yes' : '', String(p.agents)]);
    sections.push(`peers:\n${indent(table(['ID', 'ADDRESS', 'LEADER', 'AGENTS'], rows))}`);
  }
  const queues = s.queues.map((q) => [qosName(q.qos), String(q.queued)]);
  sections.push(`queued:\n${indent(table(['QOS', 'JOBS'], queues))}`);
  if (s.unschedulable.length > 0) {
    const rows = s.unschedulable.map((j) => [j.jobId, j.reason]);
    sections.push(`unschedulable:\n${indent(table(['JOB', 'REASON'], rows))}`);
  }
  return sections.join('\n\n');
}

/** `ready 3, draining 1` from a by-state map, with the enum prefix (if the server sent one) dropped. */
function counts(byState: Record<string, number>): string {
  const parts = Object.entries(byState)
    .filter(([, n]) => n > 0)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([state, n]) => `${state.replace(/^(AGENT|JOB)_STATE_/, '').toLowerCase()} ${n}`);
  return parts.length > 0 ? parts.join(', ') : 'none';
}
