/**
 * The control plane's half of artifacts, against two real in-process peers on
 * a real etcd and protocol-level agents over real gRPC: only the agent
 * holding an attempt may store its artifacts (authenticated before its bytes
 * are read), a commit leaves a second copy on the other peer, which serves
 * them once the first is gone; limits refuse a manifest and keep nothing;
 * a job token reads its needs' artifacts and nothing else.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { credentials, Metadata, status as Status, type ServiceError } from '@grpc/grpc-js';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentServiceClient, type Assign } from '../proto/gen/runmesh/v1/agent.js';
import {
  ArtifactServiceClient,
  type ArtifactFile,
  type GetArtifactResponse,
  type ListArtifactsResponse,
} from '../proto/gen/runmesh/v1/artifact.js';
import { JobSpec, JobState, type Job } from '../proto/gen/runmesh/v1/job.js';
import { ControlPlane } from '../control-plane/server.js';
import { adminToken, bearer, TestClient } from './support/client.js';
import { startEtcd, type TestEtcd } from './support/etcd.js';
import { tempDir } from './support/processes.js';
import { simAgent, type SimAgent } from './support/sim-agent.js';
import { waitUntil } from './support/wait.js';

const TOKEN = 'artifacts-store-token';
const LIMITS = { fileBytes: 1_000_000, jobBytes: 2_000_000, files: 10 };
let etcd: TestEtcd;
let a: ControlPlane;
let b: ControlPlane;
let client: TestClient;
let admin: string;
/** Holds every Assign it gets (none completes until told). */
let holder: SimAgent & { assigns: Assign[] };
let other: SimAgent;
let uploads: AgentServiceClient;

beforeAll(async () => {
  etcd = await startEtcd();
  const peer = async (name: string): Promise<ControlPlane> =>
    ControlPlane.start({
      listen: ['127.0.0.1:0'],
      httpListen: '127.0.0.1:0',
      dataDir: await tempDir(`runmesh-artifacts-${name}-`),
      store: etcd.storeUrl,
      peerId: name,
      peerTtlSeconds: 2,
      joinToken: TOKEN,
      artifactLimits: LIMITS,
      logger: pino({ level: 'silent' }),
    });
  a = await peer('peer-a');
  b = await peer('peer-b');
  admin = adminToken(a.options.dataDir, b.options.dataDir);
  client = new TestClient(a.address, admin);
  const assigns: Assign[] = [];
  holder = Object.assign(
    simAgent(a.address, { name: 'holder', token: TOKEN, slots: 4, labels: { role: 'holder' }, complete: (x) => (assigns.push(x), false) }),
    {
      assigns,
    },
  );
  other = simAgent(a.address, { name: 'other', token: TOKEN, slots: 4, labels: { role: 'other' }, complete: () => false });
  await Promise.all([holder.welcomed, other.welcomed]);
  await client.waitAgents(2);
  uploads = new AgentServiceClient(a.address, credentials.createInsecure());
}, 60_000);

afterAll(async () => {
  uploads?.close();
  holder?.close();
  other?.close();
  client?.close();
  await a?.close();
  await b?.close();
  await etcd?.stop();
});

/** Metadata of an agent's upload call. */
function as(agent: string, credential: string): Metadata {
  const md = new Metadata();
  md.set('runmesh-agent', agent);
  md.set('authorization', `Bearer ${credential}`);
  return md;
}

function unary<T>(fn: (cb: (err: ServiceError | null, res: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => fn((err, res) => (err ? reject(err) : resolve(res))));
}

function fileOf(path: string, body: Buffer): ArtifactFile {
  return { path, size: BigInt(body.length), sha256: createHash('sha256').update(body).digest('hex') };
}

/** UploadArtifact: header, then `body` in chunks of `chunk` bytes. */
function upload(md: Metadata, assign: Assign, path: string, offset: number, body: Buffer, chunk = 256 * 1024): Promise<bigint> {
  return new Promise((resolve, reject) => {
    const call = uploads.uploadArtifact(md, (err, res) => (err || !res ? reject(err ?? new Error('no answer')) : resolve(res.held)));
    call.write({ msg: { $case: 'header', value: { jobId: assign.jobId, attempt: assign.attempt, path, offset: BigInt(offset) } } });
    for (let i = 0; i < body.length; i += chunk) call.write({ msg: { $case: 'data', value: body.subarray(i, i + chunk) } });
    call.end();
  });
}

async function submitHeld(spec: Partial<JobSpec>): Promise<Assign> {
  const job = await client.submit({ argv: ['true'], artifacts: ['out/**'], selector: 'role=holder', ...spec });
  return waitUntil(() => holder.assigns.find((x) => x.jobId === job.id), { what: `job ${job.id} assigned to the holder` });
}

function artifactsOn(cp: ControlPlane, token: string): ArtifactServiceClient {
  return new ArtifactServiceClient(cp.address, credentials.createInsecure(), { interceptors: [bearer(token)] });
}

async function download(
  c: ArtifactServiceClient,
  req: { jobId: string; path: string; fromNeed?: string },
): Promise<{ file?: ArtifactFile; body: Buffer }> {
  const call = c.getArtifact({ attempt: 0, fromNeed: '', ...req });
  const parts: Buffer[] = [];
  let file: ArtifactFile | undefined;
  for await (const m of call as AsyncIterable<GetArtifactResponse>) {
    if (m.msg?.$case === 'file') file = m.msg.value;
    else if (m.msg?.$case === 'data') parts.push(Buffer.from(m.msg.value));
  }
  return { file, body: Buffer.concat(parts) };
}

describe('artifacts on the control plane', () => {
  it("takes an attempt's artifacts from the agent holding it only, keeps a second copy, and serves it with the first peer gone", async () => {
    const assign = await submitHeld({});
    const body = Buffer.alloc(700_000, 3);
    body.write('tail', body.length - 4);
    const file = fileOf('out/app.bin', body);
    const begin = (md: Metadata) =>
      unary<{ held: bigint[]; committed: boolean }>((cb) => uploads.beginArtifacts({ ...assign, files: [file] }, md, cb));
    // Refused before the request is read: no credential, a made-up one; then an agent that does not hold the attempt.
    await expect(begin(new Metadata())).rejects.toMatchObject({ code: Status.UNAUTHENTICATED });
    await expect(begin(as('holder', `rma_${'A'.repeat(43)}`))).rejects.toMatchObject({ code: Status.UNAUTHENTICATED });
    await expect(begin(as('other', other.credential))).rejects.toMatchObject({ code: Status.FAILED_PRECONDITION });
    const md = as('holder', holder.credential);
    expect(await begin(md)).toEqual({ held: [0n], committed: false });
    // A chunk past the method's limit is refused on its length prefix.
    await expect(upload(md, assign, file.path, 0, body, 300 * 1024)).rejects.toMatchObject({ code: Status.RESOURCE_EXHAUSTED });
    expect(await upload(md, assign, file.path, 0, body.subarray(0, 400_000))).toBe(400_000n);
    expect(await begin(md)).toEqual({ held: [400_000n], committed: false }); // resumed where it stood
    await expect(upload(md, assign, file.path, 0, body)).rejects.toMatchObject({ code: Status.FAILED_PRECONDITION });
    expect(await upload(md, assign, file.path, 400_000, body.subarray(400_000))).toBe(BigInt(body.length));
    const { peers } = await unary<{ peers: string[] }>((cb) => uploads.commitArtifacts(assign, md, cb));
    expect(peers).toEqual(['peer-a', 'peer-b']);
    holder.finish(assign);
    const done = await client.waitDone(assign.jobId);
    expect(done.state).toBe(JobState.JOB_STATE_SUCCEEDED);
    expect(done.attempts[0]?.artifacts).toEqual({ files: 1, bytes: BigInt(body.length), error: '' });
    const metrics = await (await fetch(`http://${a.httpAddress}/metrics`)).text();
    expect(metrics).toContain('runmesh_artifact_files_stored_total 1\n');
    expect(metrics).toContain(`runmesh_artifact_stored_bytes_total ${body.length}\n`);

    await a.close();
    const fromB = artifactsOn(b, admin);
    try {
      const listed = await unary<ListArtifactsResponse>((cb) => fromB.listArtifacts({ jobId: assign.jobId, attempt: 0, fromNeed: '' }, cb));
      expect(listed).toEqual({ jobId: assign.jobId, attempt: 1, files: [file], error: '' });
      const got = await download(fromB, { jobId: assign.jobId, path: file.path });
      expect(got.file).toEqual(file);
      expect(got.body.equals(body)).toBe(true);
      await expect(download(fromB, { jobId: assign.jobId, path: 'out/none' })).rejects.toMatchObject({ code: Status.NOT_FOUND });
    } finally {
      fromB.close();
    }
    a = await ControlPlane.start({ ...a.options, listen: ['127.0.0.1:0'], httpListen: '127.0.0.1:0' });
  }, 60_000);
});

describe('artifact limits and job tokens', () => {
  beforeAll(async () => {
    client.close();
    client = new TestClient(a.address, admin);
    uploads.close();
    uploads = new AgentServiceClient(a.address, credentials.createInsecure());
    holder.close();
    holder.assigns.length = 0;
    const assigns = holder.assigns;
    holder = Object.assign(
      simAgent(a.address, {
        name: 'holder-2',
        token: TOKEN,
        slots: 4,
        labels: { role: 'holder' },
        complete: (x) => (assigns.push(x), false),
      }),
      { assigns },
    );
    await holder.welcomed;
  }, 30_000);

  it('refuses a manifest over a limit, naming the file and the flag, and keeps nothing of it', async () => {
    const assign = await submitHeld({});
    const md = as('holder-2', holder.credential);
    const big = { path: 'out/huge.iso', size: 1_000_001n, sha256: 'b'.repeat(64) };
    const refused = unary((cb) => uploads.beginArtifacts({ ...assign, files: [big] }, md, cb));
    await expect(refused).rejects.toMatchObject({
      code: Status.RESOURCE_EXHAUSTED,
      details: 'out/huge.iso: 1000001 bytes, over the per-file limit of 1000000 (--artifact-max-file)',
    });
    const dir = join(a.options.dataDir, 'blobs', 'artifacts');
    expect(existsSync(join(dir, '.uploads', assign.jobId)) ? readdirSync(join(dir, '.uploads', assign.jobId)) : []).toEqual([]);
    holder.finish(assign);
    await client.waitDone(assign.jobId);
  });

  it("lets a job token read its needs' artifacts (from_need), and no other job's", async () => {
    const res = await unary<{ jobs: Job[] }>((cb) =>
      client.jobs.submitBatch(
        {
          specs: [
            JobSpec.fromPartial({ name: 'build', argv: ['true'], artifacts: ['out/**'], selector: 'role=holder' }),
            JobSpec.fromPartial({ name: 'test', argv: ['true'], needs: ['build'], selector: 'role=holder' }),
          ],
        },
        cb,
      ),
    );
    const [build, test] = res.jobs;
    const buildAssign = await waitUntil(() => holder.assigns.find((x) => x.jobId === build!.id), { what: 'build assigned' });
    const md = as('holder-2', holder.credential);
    const body = Buffer.from('built\n');
    const file = fileOf('out/result.txt', body);
    await unary((cb) => uploads.beginArtifacts({ ...buildAssign, files: [file] }, md, cb));
    await upload(md, buildAssign, file.path, 0, body);
    await unary((cb) => uploads.commitArtifacts(buildAssign, md, cb));
    holder.finish(buildAssign);
    const testAssign = await waitUntil(() => holder.assigns.find((x) => x.jobId === test!.id), { what: 'test assigned' });
    const asJob = artifactsOn(a, testAssign.jobToken);
    try {
      const got = await download(asJob, { jobId: '', path: file.path, fromNeed: 'build' });
      expect(got.body.toString()).toBe('built\n');
      await expect(download(asJob, { jobId: '', path: file.path, fromNeed: 'deploy' })).rejects.toMatchObject({ code: Status.NOT_FOUND });
      // Its need by id is not its own job: NOT_FOUND, as any other job is.
      await expect(download(asJob, { jobId: build!.id, path: file.path })).rejects.toMatchObject({ code: Status.NOT_FOUND });
    } finally {
      asJob.close();
    }
    const asAdmin = artifactsOn(a, admin);
    try {
      await expect(download(asAdmin, { jobId: '', path: file.path, fromNeed: 'build' })).rejects.toMatchObject({
        code: Status.INVALID_ARGUMENT,
      });
    } finally {
      asAdmin.close();
    }
    holder.finish(testAssign);
    await client.waitDone(test!.id);
  });
});
