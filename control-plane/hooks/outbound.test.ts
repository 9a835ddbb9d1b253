/**
 * OutboundHooks on a real embedded store, sending to a receiver on loopback:
 * only a leader sends (a follower's events wait in the outbox for one), each
 * event reaches the hooks that asked for it, in their tenant (agent.lost in
 * every tenant), signed under each hook's own secret, once however often the
 * tracker reports the ending.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Job, JobSpec, JobState } from '../../proto/gen/runmesh/v1/job.js';
import { tempDir } from '../../test/support/processes.js';
import { waitUntil } from '../../test/support/wait.js';
import { Secret } from '../secret.js';
import { KeyRing } from '../secrets/index.js';
import { openEmbeddedStore } from '../store/embedded.js';
import type { Store } from '../store/store.js';
import { Deliveries } from './deliveries.js';
import { HookStore } from './hook-store.js';
import { OutboundHooks } from './outbound.js';
import { signedContent, verify } from './signature.js';

const SECRETS: Record<string, string> = { ops: 'ops-secret-0123456789abcdef', other: 'other-secret-0123456789abcdef' };

let store: Store;
let receiver: Server;
let url: string;
const got: Array<{ path: string; headers: IncomingHttpHeaders; body: string }> = [];

beforeAll(async () => {
  store = await openEmbeddedStore({ dir: await tempDir('runmesh-hooks-out-') });
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      got.push({ path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString() });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
});

afterAll(async () => {
  receiver.close();
  await store.close();
});

const signed = (r: (typeof got)[number], hook: string): boolean =>
  verify(
    SECRETS[hook]!,
    signedContent(Buffer.from(r.body), r.headers['x-runmesh-timestamp'] as string),
    r.headers['x-hub-signature-256'] as string,
  );

const job = (id: string, tenant: string, state: JobState): Job =>
  Job.fromPartial({ id, state, spec: JobSpec.fromPartial({ tenant, name: id }), updatedAt: new Date().toISOString() });

describe('outbound hooks', () => {
  it('are sent by the leader only, to the hooks that asked, in their tenant, signed, once per event', async () => {
    const hooks = new HookStore(store, KeyRing.of(randomBytes(32)));
    const base = { template: '', paramMap: {}, createdAt: new Date().toISOString(), createdBy: 'test' };
    await hooks.create(
      { ...base, name: 'ops', tenant: 'a', url: `${url}/ops`, events: ['agent.lost', 'job.failed'] },
      new Secret(SECRETS.ops!),
    );
    await hooks.create({ ...base, name: 'other', tenant: 'b', url: `${url}/other`, events: ['job.failed'] }, new Secret(SECRETS.other!));
    const deliveries = new Deliveries(store);
    let leader = false;
    const out = new OutboundHooks({
      hooks,
      deliveries,
      isLeader: () => leader,
      logger: pino({ level: 'silent' }),
      retry: { firstMs: 50, maxDelayMs: 50, maxAttempts: 3, timeoutMs: 2000 },
    });
    out.start();
    try {
      out.agentLost('agent-1', ['j_1'], 'gone for 2000 ms');
      out.jobChanged(job('j_failed', 'a', JobState.JOB_STATE_FAILED));
      out.jobChanged(job('j_ok', 'a', JobState.JOB_STATE_SUCCEEDED));
      out.jobChanged(job('j_running', 'b', JobState.JOB_STATE_RUNNING));
      await waitUntil(async () => (await deliveries.due()).length === 2, { what: 'two deliveries in the outbox', timeoutMs: 5000 });
      expect(got).toEqual([]); // a follower queues, never sends
      leader = true;
      out.kick();
      await waitUntil(() => got.length === 2, { what: 'both deliveries at the receiver', timeoutMs: 5000 });
      out.jobChanged(job('j_failed', 'a', JobState.JOB_STATE_FAILED)); // the same ending, reported again (another peer, a reload)
      out.jobChanged(job('j_failed_b', 'b', JobState.JOB_STATE_TIMED_OUT));
      await waitUntil(() => got.length === 3, { what: "tenant b's failure at its hook", timeoutMs: 5000 });
      const events = got.map((r) => ({
        path: r.path,
        event: r.headers['x-runmesh-event'],
        id: r.headers['x-runmesh-delivery'],
        signed: signed(r, r.path.slice(1)),
      }));
      expect(events).toEqual(
        expect.arrayContaining([
          { path: '/ops', event: 'agent.lost', id: expect.stringMatching(/^agent\.lost\.agent-1\.\d+$/) as unknown, signed: true },
          { path: '/ops', event: 'job.failed', id: 'job.failed.j_failed', signed: true },
          { path: '/other', event: 'job.failed', id: 'job.failed.j_failed_b', signed: true },
        ]),
      );
      expect(JSON.parse(got.find((r) => r.headers['x-runmesh-event'] === 'agent.lost')!.body)).toMatchObject({
        event: 'agent.lost',
        agent: { name: 'agent-1', jobs: ['j_1'], reason: 'gone for 2000 ms' },
      });
      await waitUntil(async () => (await deliveries.due()).length === 0, { what: 'the outbox to empty', timeoutMs: 5000 });
      expect((await deliveries.list('ops')).map((d) => [d.event, d.attempts, d.statusCode, d.delivered])).toEqual(
        expect.arrayContaining([
          ['agent.lost', 1, 204, true],
          ['job.failed', 1, 204, true],
        ]),
      );
      expect(got).toHaveLength(3);
    } finally {
      await out.close();
    }
  });
});
