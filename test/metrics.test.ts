/**
 * /metrics of a real control plane (issue 19): a real server process, a real
 * agent running a real job, and protocol-level agents holding jobs so some
 * stay queued. Checks that the new series exist with sensible values, that
 * the backlog per label set counts queued jobs and the agents that could
 * take them (nobody for one selector, a full agent for another), and that
 * `runmesh cluster status` shows it, as text and as JSON. And the Grafana
 * dashboard and alert rules under deploy/: every expression parses
 * (promtool, which CI installs; skipped without it) and every metric they
 * name is one this server exports.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { credentials, Metadata } from '@grpc/grpc-js';
import { ClusterServiceClient } from '../proto/gen/runmesh/v1/cluster.js';
import { JobState } from '../proto/gen/runmesh/v1/job.js';
import { adminToken, TestClient } from './support/client.js';
import { ROOT, run, startAgent, startServer, stopAll, TOKEN, type ServerProc } from './support/processes.js';
import { simAgent, type SimAgent } from './support/sim-agent.js';
import { waitUntil } from './support/wait.js';

const DASHBOARD = 'deploy/grafana/runmesh.json';
const ALERTS = 'deploy/prometheus/alerts.yml';
const hasPromtool = spawnSync('promtool', ['--version']).status === 0;

let server: ServerProc;

/** Every PromQL expression of the dashboard's panels. */
function dashboardExprs(): string[] {
  const d = JSON.parse(readFileSync(join(ROOT, DASHBOARD), 'utf8')) as { panels: Array<{ targets?: Array<{ expr?: string }> }> };
  return d.panels.flatMap((p) => (p.targets ?? []).flatMap((t) => (t.expr ? [t.expr] : [])));
}

/** Names a scrape exports, with a histogram's _bucket/_sum/_count and a counter's series. */
function exportedNames(text: string): Set<string> {
  const out = new Set<string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\w+)$/gm)) {
    const [, name = '', type] = m;
    out.add(name);
    if (type === 'histogram' || type === 'summary') for (const s of ['_bucket', '_sum', '_count']) out.add(`${name}${s}`);
  }
  return out;
}
let client: TestClient;
let held: SimAgent;
let admin: string;

/** The value of one series: `name{labels}` with exactly these labels (in the server's order), or undefined. */
export function sample(text: string, name: string, labels = ''): number | undefined {
  const escaped = `${name}${labels ? `{${labels}}` : ''}`.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const m = new RegExp(`^${escaped} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}

const scrape = async (): Promise<string> => (await fetch(`http://${server.http}/metrics`)).text();

async function cli(...args: string[]): Promise<string> {
  const p = run([...args, '--server', server.address, '--token', admin]);
  const code = await new Promise<number | null>((resolve) => p.proc.once('exit', resolve));
  if (code !== 0) throw new Error(`runmesh ${args.join(' ')} exited ${code}: ${p.output()}`);
  return p.output();
}

beforeAll(async () => {
  server = await startServer();
  admin = adminToken(server.dataDir);
  client = new TestClient(server.address, admin);
  await startAgent(server.address, { name: 'real', slots: 2, labels: 'os=linux' });
  // One slot, never finishing what it is given: its label set's next jobs stay queued.
  held = simAgent(server.address, { name: 'gpu-a100', token: TOKEN, slots: 1, labels: { gpu: 'a100' }, complete: () => false });
  await held.welcomed;
  await client.waitAgents(2);
}, 60_000);

afterAll(async () => {
  held?.close();
  client?.close();
  await stopAll();
});

describe('/metrics', () => {
  it('times a real job from submit to its end, and counts store commits and gRPC calls', async () => {
    const job = await client.submit({ argv: ['sh', '-c', 'echo metrics'], selector: 'os=linux' });
    expect((await client.waitDone(job.id)).state).toBe(JobState.JOB_STATE_SUCCEEDED);
    const text = await waitUntil(
      async () => {
        const t = await scrape();
        return (sample(t, 'runmesh_job_run_duration_seconds_count', 'qos="standard",state="succeeded"') ?? 0) >= 1 && t;
      },
      { what: 'the run duration observed', timeoutMs: 10_000, intervalMs: 100 },
    );
    for (const name of [
      'runmesh_job_submit_to_assign_seconds',
      'runmesh_job_submit_to_running_seconds',
      'runmesh_job_queue_wait_seconds',
    ]) {
      expect(sample(text, `${name}_count`, 'qos="standard"'), name).toBeGreaterThanOrEqual(1);
      // Under a minute on an idle mesh: the +Inf bucket is not the only one holding it.
      expect(sample(text, `${name}_bucket`, 'le="60",qos="standard"'), name).toBeGreaterThanOrEqual(1);
    }
    expect(sample(text, 'runmesh_store_txn_seconds_count', 'store="embedded"')).toBeGreaterThan(0);
    expect(sample(text, 'runmesh_store_txn_batch_size_count', 'store="embedded"')).toBeGreaterThan(0);
    expect(sample(text, 'runmesh_grpc_server_handling_seconds_count', 'method="JobService.Submit",code="OK"')).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'runmesh_agent_streams')).toBe(2);
    expect(sample(text, 'runmesh_is_leader')).toBe(1);
    expect(sample(text, 'runmesh_leader_known')).toBe(1);
    expect(sample(text, 'runmesh_agents', 'state="ready"')).toBe(2);
    expect(sample(text, 'runmesh_process_cpu_user_seconds_total')).toBeGreaterThan(0);
    expect(text).not.toMatch(/runmesh_process_process_/);
  });

  it('shows queue depth by QoS name and tenant, the oldest queued job, and the backlog per label set', async () => {
    await client.submit({ argv: ['true'], selector: 'gpu=a100' }); // takes the one slot, and is held there
    for (let i = 0; i < 2; i++) await client.submit({ argv: ['true'], selector: 'gpu=a100', qos: 3 });
    for (let i = 0; i < 3; i++) await client.submit({ argv: ['true'], selector: 'gpu=h100', tenant: 'team-b' });
    const text = await waitUntil(
      async () => {
        const t = await scrape();
        return (
          sample(t, 'runmesh_backlog_jobs', 'selector="gpu=h100"') === 3 &&
          sample(t, 'runmesh_backlog_jobs', 'selector="gpu=a100"') === 2 &&
          t
        );
      },
      { what: 'the backlog of both label sets', timeoutMs: 10_000, intervalMs: 100 },
    );
    expect(sample(text, 'runmesh_backlog_agents', 'selector="gpu=h100"')).toBe(0);
    expect(sample(text, 'runmesh_backlog_agents', 'selector="gpu=a100"')).toBe(1);
    expect(sample(text, 'runmesh_backlog_free_slots', 'selector="gpu=a100"')).toBe(0);
    expect(sample(text, 'runmesh_backlog_omitted_label_sets')).toBe(0);
    expect(sample(text, 'runmesh_queue_depth', 'qos="batch"')).toBe(2);
    expect(sample(text, 'runmesh_queue_depth', 'qos="standard"')).toBe(3);
    expect(sample(text, 'runmesh_queue_depth_by_tenant', 'tenant="team-b"')).toBe(3);
    expect(sample(text, 'runmesh_queue_depth_by_tenant', 'tenant="default"')).toBe(2);
    const oldest = sample(text, 'runmesh_queue_oldest_age_seconds', 'qos="standard"') ?? -1;
    expect(oldest).toBeGreaterThanOrEqual(0);
    expect(oldest).toBeLessThan(30);

    const page = await cli('cluster', 'status');
    expect(page).toMatch(/backlog by label set:/);
    expect(page).toMatch(/gpu=h100\s+3\s+0\s+0/);
    expect(page).toMatch(/gpu=a100\s+2\s+1\s+0/);
    const json = JSON.parse(await cli('cluster', 'status', '--json')) as {
      backlog: Array<{ selector: string; queued: number; agents?: number }>;
    };
    expect(json.backlog).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ selector: 'gpu=h100', queued: 3 }),
        expect.objectContaining({ selector: 'gpu=a100', queued: 2, agents: 1 }),
      ]),
    );
  });

  it('exports every metric the dashboard and the alert rules use', async () => {
    const exported = exportedNames(await scrape());
    const used = [
      ...new Set([...dashboardExprs(), readFileSync(join(ROOT, ALERTS), 'utf8')].flatMap((e) => e.match(/\brunmesh_\w+/g) ?? [])),
    ];
    expect(used.length).toBeGreaterThan(10);
    expect(used.filter((name) => !exported.has(name))).toEqual([]);
  });

  it.skipIf(!hasPromtool)('the alert rules and every dashboard expression parse (promtool)', () => {
    execFileSync('promtool', ['check', 'rules', join(ROOT, ALERTS)], { stdio: 'pipe' });
    // Each expression as a recording rule: promtool parses it as PromQL.
    const dir = mkdtempSync(join(tmpdir(), 'runmesh-dashboard-'));
    try {
      const rules = dashboardExprs().map((e, i) => `      - record: dashboard:expr_${i}\n        expr: ${JSON.stringify(e)}`);
      writeFileSync(join(dir, 'dashboard.yml'), `groups:\n  - name: dashboard\n    rules:\n${rules.join('\n')}\n`);
      const r = spawnSync('promtool', ['check', 'rules', join(dir, 'dashboard.yml')], { encoding: 'utf8' });
      expect(r.status, `${r.stdout}${r.stderr}`).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  // Last: the failures cool this address down for the tests after it.
  it('counts authentication failures and rate-limited calls', async () => {
    const anonymous = new ClusterServiceClient(server.address, credentials.createInsecure());
    const bad = new Metadata();
    bad.set('authorization', 'Bearer rmt_not-a-token');
    const codes: number[] = [];
    for (let i = 0; i < 14; i++)
      codes.push(await new Promise<number>((resolve) => anonymous.status({}, bad, (err) => resolve(err?.code ?? 0))));
    anonymous.close();
    const text = await scrape();
    expect(sample(text, 'runmesh_auth_failures_total', 'service="ClusterService"')).toBe(codes.filter((c) => c === 16).length);
    expect(sample(text, 'runmesh_rate_limited_total', 'method="ClusterService.Status"')).toBe(codes.filter((c) => c === 8).length);
    expect(codes.filter((c) => c === 8).length).toBeGreaterThan(0);
  });
});
