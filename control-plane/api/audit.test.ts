/**
 * The audit log, end to end on a real gRPC server (port 0) over the real
 * services, gate, token store and audit log on an embedded store: every
 * mutating call leaves exactly one entry (refusals too), a failed
 * authentication leaves one for 'anonymous', entries list in time order with
 * filters, only admins and operators may list, no entry holds a secret, and
 * retention deletes old entries.
 */
import { Client, credentials, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditServiceService, ListAuditRequest, type AuditEntry, type ListAuditResponse } from '../../proto/gen/runmesh/v1/audit.js';
import { ClusterServiceService, type Agent } from '../../proto/gen/runmesh/v1/cluster.js';
import { JobServiceService, JobSpec } from '../../proto/gen/runmesh/v1/job.js';
import { CreateTokenRequest, TokenServiceService } from '../../proto/gen/runmesh/v1/token.js';
import { tempDir } from '../../test/support/processes.js';
import { waitUntil } from '../../test/support/wait.js';
import { AUDIT_PREFIX, AuditLog, AuditRetention } from '../audit/index.js';
import type { TokenStore } from '../auth/index.js';
import { openEmbeddedStore } from '../store/embedded.js';
import type { Store } from '../store/store.js';
import type { ClusterView } from './cluster-service.js';
import { startApi, type ApiHarness } from './testing/harness.js';

const log = pino({ level: 'silent' });

const agent: Agent = { name: 'a1' } as Agent;
const view: ClusterView = {
  agents: () => [agent],
  peers: () => [],
  leader: () => 'p1',
  unschedulable: () => [],
  drain: async () => true,
  setCordoned: async () => undefined,
  revokeAgent: async () => true,
  rotateAgent: async () => ({ requested: true, rotated: true }),
};

let api: ApiHarness;
let store: Store;
let tokens: TokenStore;
let client: Client;
const token: Record<'admin' | 'operator' | 'submitter' | 'viewer', { token: string; id: string }> = {} as never;

beforeAll(async () => {
  api = await startApi({ view });
  ({ store, tokens } = api);
  client = new Client(api.address, credentials.createInsecure());
  for (const role of ['admin', 'operator', 'submitter', 'viewer'] as const) {
    const made = await tokens.create({ name: `t-${role}`, role, tenants: role === 'admin' ? [] : ['a'], ttlMs: 0 });
    token[role] = { token: made.token, id: made.record.id };
  }
});

afterAll(async () => {
  client?.close();
  await api?.close();
});

interface Def {
  path: string;
  requestSerialize: (v: never) => Buffer;
  responseDeserialize: (b: Buffer) => unknown;
}

function call<T>(def: Def, request: unknown, bearer: string | undefined): Promise<{ res?: T; err?: ServiceError }> {
  const md = new Metadata();
  if (bearer !== undefined) md.set('authorization', `Bearer ${bearer}`);
  return new Promise((resolve) =>
    client.makeUnaryRequest(def.path, def.requestSerialize as (v: unknown) => Buffer, def.responseDeserialize, request, md, (err, res) =>
      resolve(err ? { err } : { res: res as T }),
    ),
  );
}

/** Every stored entry, once the buffer has been written. */
async function stored(): Promise<AuditEntry[]> {
  await new Promise((r) => setTimeout(r, 150));
  const all: AuditEntry[] = [];
  let pageToken = '';
  do {
    const { res, err } = await call<ListAuditResponse>(
      AuditServiceService.listAudit,
      ListAuditRequest.fromPartial({ since: '', actor: '', limit: 1000, pageToken }),
      token.admin.token,
    );
    if (err) throw err;
    all.push(...res!.entries);
    pageToken = res!.nextPageToken;
  } while (pageToken);
  return all;
}

/** The entries a step added. */
async function added(step: () => Promise<unknown>): Promise<AuditEntry[]> {
  const before = (await stored()).length;
  await step();
  return (await stored()).slice(before);
}

const pick = (e: AuditEntry) => ({ actor: e.actor, method: e.method, target: e.target, result: e.result });

describe('recording', () => {
  it('records each mutating call once, with actor, target and result', async () => {
    let jobId = '';
    const submit = await added(async () => {
      const { res } = await call<{ job: { id: string } }>(
        JobServiceService.submit,
        { spec: JobSpec.fromPartial({ argv: ['true'], env: { PASSWORD: 'hunter2-env-value' } }) },
        token.submitter.token,
      );
      jobId = res!.job.id;
    });
    expect(submit.map(pick)).toEqual([{ actor: token.submitter.id, method: 'JobService.Submit', target: jobId, result: 'OK' }]);
    expect(submit[0]!.address).toMatch(/127\.0\.0\.1/);
    expect(Date.parse(submit[0]!.time)).toBeGreaterThan(Date.now() - 10_000);

    const batch = await added(() =>
      call(
        JobServiceService.submitBatch,
        { specs: [JobSpec.fromPartial({ argv: ['true'] }), JobSpec.fromPartial({ argv: ['true'] })] },
        token.admin.token,
      ),
    );
    expect(batch.map(pick)).toEqual([{ actor: token.admin.id, method: 'JobService.SubmitBatch', target: '2 jobs', result: 'OK' }]);

    const cancel = await added(() => call(JobServiceService.cancel, { id: jobId, reason: 'test' }, token.operator.token));
    expect(cancel.map(pick)).toEqual([{ actor: token.operator.id, method: 'JobService.Cancel', target: jobId, result: 'OK' }]);
    // The cancelled job, re-driven (issue 20: dead letters).
    const retry = await added(() => call(JobServiceService.retry, { id: jobId, reason: 'test' }, token.operator.token));
    expect(retry.map(pick)).toEqual([{ actor: token.operator.id, method: 'JobService.Retry', target: jobId, result: 'OK' }]);

    for (const [m, def] of [
      ['Drain', ClusterServiceService.drain],
      ['Cordon', ClusterServiceService.cordon],
      ['Uncordon', ClusterServiceService.uncordon],
      ['RevokeAgent', ClusterServiceService.revokeAgent],
      ['RotateAgent', ClusterServiceService.rotateAgent],
    ] as const) {
      const got = await added(() => call(def, { name: 'a1', reason: 'x' }, token.operator.token));
      expect(got.map(pick)).toEqual([{ actor: token.operator.id, method: `ClusterService.${m}`, target: 'a1', result: 'OK' }]);
    }

    let madeId = '';
    let madeSecret = '';
    const create = await added(async () => {
      const { res } = await call<{ info: { id: string }; token: string }>(
        TokenServiceService.createToken,
        CreateTokenRequest.fromPartial({ name: 'made', role: 'viewer', tenants: ['a'], ttlSeconds: 0 }),
        token.admin.token,
      );
      madeId = res!.info.id;
      madeSecret = res!.token;
    });
    expect(create.map(pick)).toEqual([{ actor: token.admin.id, method: 'TokenService.CreateToken', target: madeId, result: 'OK' }]);
    // A whole token pasted as the id: the entry names its id, never its secret.
    const revoke = await added(() => call(TokenServiceService.revokeToken, { id: madeSecret }, token.admin.token));
    expect(revoke.map(pick)).toEqual([{ actor: token.admin.id, method: 'TokenService.RevokeToken', target: madeId, result: 'OK' }]);

    const everything = JSON.stringify(await stored()) + JSON.stringify((await store.range(AUDIT_PREFIX)).kvs);
    expect(everything).not.toContain(madeSecret.split('_').slice(2).join('_'));
    expect(everything).not.toContain('hunter2-env-value');
    for (const t of Object.values(token)) expect(everything).not.toContain(t.token.split('_').slice(2).join('_'));
  });

  it('records a refused mutating call once, with its status', async () => {
    const denied = await added(() =>
      call(
        TokenServiceService.createToken,
        CreateTokenRequest.fromPartial({ name: 'x', role: 'viewer', tenants: ['a'] }),
        token.viewer.token,
      ),
    );
    expect(denied.map(pick)).toEqual([
      { actor: token.viewer.id, method: 'TokenService.CreateToken', target: '', result: 'PERMISSION_DENIED' },
    ]);
    const notFound = await added(() => call(ClusterServiceService.drain, { name: 'nobody' }, token.operator.token));
    expect(notFound.map(pick)).toEqual([
      { actor: token.operator.id, method: 'ClusterService.Drain', target: 'nobody', result: 'NOT_FOUND' },
    ]);
  });

  it('records a failed authentication once, for anonymous, and reads not at all', async () => {
    const unauth = await added(() =>
      call(JobServiceService.cancel, { id: 'j_0000000000', reason: 'x' }, 'rmt_0123456789abcdef_' + 'x'.repeat(43)),
    );
    expect(unauth.map(pick)).toEqual([{ actor: 'anonymous', method: 'JobService.Cancel', target: '', result: 'UNAUTHENTICATED' }]);
    expect(JSON.stringify(unauth)).not.toContain('x'.repeat(43));
    const none = await added(() => call(ClusterServiceService.status, {}, undefined));
    expect(none.map(pick)).toEqual([{ actor: 'anonymous', method: 'ClusterService.Status', target: '', result: 'UNAUTHENTICATED' }]);
    const reads = await added(() => call(ClusterServiceService.status, {}, token.viewer.token));
    expect(reads).toEqual([]);
  });
});

describe('listing', () => {
  it('lists in time order, and filters by since and actor', async () => {
    const all = await stored();
    expect(all.length).toBeGreaterThan(5);
    expect(all.map((e) => e.time)).toEqual([...all.map((e) => e.time)].sort());
    const byOperator = (
      await call<ListAuditResponse>(
        AuditServiceService.listAudit,
        ListAuditRequest.fromPartial({ actor: token.operator.id, limit: 100 }),
        token.operator.token,
      )
    ).res!;
    expect(byOperator.entries.length).toBeGreaterThan(0);
    expect(byOperator.entries.every((e) => e.actor === token.operator.id)).toBe(true);
    const since = all.at(-2)!.time;
    const recent = (
      await call<ListAuditResponse>(AuditServiceService.listAudit, ListAuditRequest.fromPartial({ since, limit: 100 }), token.admin.token)
    ).res!;
    expect(recent.entries.every((e) => e.time >= since)).toBe(true);
    expect(recent.entries.length).toBeLessThan(all.length);
    const paged = (
      await call<ListAuditResponse>(AuditServiceService.listAudit, ListAuditRequest.fromPartial({ limit: 2 }), token.admin.token)
    ).res!;
    expect(paged.entries).toEqual(all.slice(0, 2));
    const next = (
      await call<ListAuditResponse>(
        AuditServiceService.listAudit,
        ListAuditRequest.fromPartial({ limit: 2, pageToken: paged.nextPageToken }),
        token.admin.token,
      )
    ).res!;
    expect(next.entries).toEqual(all.slice(2, 4));
  });

  it('is refused to a viewer and a submitter (PERMISSION_DENIED)', async () => {
    for (const who of [token.viewer, token.submitter])
      expect((await call(AuditServiceService.listAudit, ListAuditRequest.fromPartial({ limit: 1 }), who.token)).err?.code).toBe(
        status.PERMISSION_DENIED,
      );
  });
});

describe('the log itself', () => {
  it('deletes entries older than the retention, while leading only', async () => {
    const dir = await tempDir('runmesh-audit-ret-');
    const own = await openEmbeddedStore({ dir });
    let now = Date.parse('2026-01-01T00:00:00Z');
    const auditLog = new AuditLog(own, log, { now: () => new Date(now) });
    const rec = (actor: string) => auditLog.record({ actor, method: 'JobService.Cancel', target: 'j', from: 'x', result: 'OK' });
    rec('old-1');
    rec('old-2');
    now += 2 * 86_400_000;
    rec('new');
    await auditLog.close();
    let leading = false;
    const retention = new AuditRetention({
      audit: auditLog,
      logger: log,
      retentionMs: 86_400_000,
      isLeader: () => leading,
      now: () => now,
    });
    await retention.sweep();
    expect((await auditLog.list()).entries.length).toBe(3);
    leading = true;
    await retention.sweep();
    expect((await auditLog.list()).entries.map((e) => e.actor)).toEqual(['new']);
    await retention.close();
    await own.close();
  });

  it('keeps entries through a failed write, retries, and drops the oldest past its bound', async () => {
    let failing = true;
    const written: string[] = [];
    const flaky = {
      maxTxnOps: 128,
      range: () => Promise.reject(new Error('unused')),
      txn: async (r: { success?: ReadonlyArray<{ type: string; key: string; value?: string }> }) => {
        if (failing) throw new Error('store down');
        for (const op of r.success ?? []) written.push((JSON.parse(op.value!) as { actor: string }).actor);
        return { succeeded: true, revision: 1 };
      },
    };
    const auditLog = new AuditLog(flaky as never, log, { flushMs: 5, retryMs: 20, maxBuffered: 3 });
    for (const a of ['a', 'b', 'c', 'd']) auditLog.record({ actor: a, method: 'm', target: '', from: '', result: 'OK' });
    await new Promise((r) => setTimeout(r, 50));
    failing = false;
    await waitUntil(() => written.length === 3, { what: 'the buffered entries written after the store came back', timeoutMs: 2_000 });
    expect(written).toEqual(['b', 'c', 'd']);
    await auditLog.close();
  });
});
