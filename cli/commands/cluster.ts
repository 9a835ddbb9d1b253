/** `runmesh cluster status`: peers, leader, agents by state, queues by QoS, backlog per label set, jobs by state, stuck jobs. */
import type { Command } from 'commander';
import { StatusResponse } from '../../proto/gen/runmesh/v1/cluster.js';
import { unary, withConnection } from '../client.js';
import { indent, keyValues, printJson, qosName, table } from '../format.js';
import { serverOption, tokenOption } from '../options.js';

export function registerCluster(program: Command): void {
  const cluster = program.command('cluster').description('cluster health');
  cluster
    .command('status')
    .description('peers, leader, agents, queue depth, backlog per label set and stuck jobs')
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
  if (s.backlog.length > 0) sections.push(backlogSection(s));
  if (s.unschedulable.length > 0) {
    const rows = s.unschedulable.map((j) => [j.jobId, j.reason]);
    sections.push(`unschedulable:\n${indent(table(['JOB', 'REASON'], rows))}`);
  }
  return sections.join('\n\n');
}

/** Queued jobs per label set and the agents that could take them (what an autoscaler reads). */
function backlogSection(s: StatusResponse): string {
  const rows = s.backlog.map((b) => [
    b.selector || '(any agent)',
    String(b.queued),
    b.invalid ? `invalid: ${b.invalid}` : String(b.agents),
    String(b.freeSlots),
  ]);
  const more = s.backlogOmitted?.labelSets ? `\n  (${s.backlogOmitted.labelSets} more label sets, ${s.backlogOmitted.queued} jobs)` : '';
  return `backlog by label set:\n${indent(table(['LABELS', 'QUEUED', 'AGENTS', 'FREE SLOTS'], rows))}${more}`;
}

/** `ready 3, draining 1` from a by-state map, with the enum prefix (if the server sent one) dropped. */
function counts(byState: Record<string, number>): string {
  const parts = Object.entries(byState)
    .filter(([, n]) => n > 0)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([state, n]) => `${state.replace(/^(AGENT|JOB)_STATE_/, '').toLowerCase()} ${n}`);
  return parts.length > 0 ? parts.join(', ') : 'none';
}
