import { randomBytes } from 'node:crypto';
import { credentials, Metadata, Server, ServerCredentials, status as Status, type ServiceError } from '@grpc/grpc-js';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Assign, Cancel, Drain } from '../../proto/gen/runmesh/v1/agent.js';
import { JobSpec, LogStream } from '../../proto/gen/runmesh/v1/job.js';
import type { LogRead, LogRecord } from '../logs/log-store.js';
import { isMeshClosed, PeerCallError } from '../mesh/errors.js';
import { PeerClients } from '../mesh/peer-clients.js';
import { PEER_METADATA_KEY, PeerSecret } from '../mesh/peer-secret.js';
import { PeerServiceClient } from '../../proto/gen/runmesh/v1/peer.js';
import { PeerServiceImpl, type PeerHandler } from './peer-service.js';
import { waitUntil } from '../../test/support/wait.js';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ArtifactFile } from '../../proto/gen/runmesh/v1/artifact.js';
import { DirArtifactStorage } from '../artifacts/dir-storage.js';
import { DEFAULT_ARTIFACT_LIMITS, type ArtifactKey } from '../artifacts/storage.js';

const JOB = 'j_0123456789abcdef';

/** The peer's side of the contract: agents it holds, and one log of three records that can be followed. */
class TestPeer implements PeerHandler {
  readonly delivered: string[] = [];
  readonly connected = new Set(['runner-1']);
  followAborted = false;

  deliverAssign(agent: string, assign: Assign): boolean {
    return this.take(agent, `assign ${assign.jobId}/${assign.attempt}`);
  }
  deliverCancel(agent: string, cancel: Cancel): boolean {
    return this.take(agent, `cancel ${cancel.jobId}/${cancel.attempt} ${cancel.graceSeconds}s`);
  }
  deliverDrain(agent: string, drain: Drain): boolean {
    return this.take(agent, `drain ${drain.reason}`);
  }
  async *readLog({ jobId, attempt, fromSeq, follow }: LogRead, signal: AbortSignal): AsyncIterable<LogRecord> {
    if (jobId !== JOB || attempt !== 1) throw new Error('no such log');
    for (let seq = fromSeq; seq < 3; seq++) yield { seq, stream: LogStream.LOG_STREAM_STDOUT, data: Buffer.from(`line ${seq}\n`) };
    if (!follow) return;
    await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    this.followAborted = true;
  }
  async copyLog(jobId: string, attempt: number, sourcePeer: string, records: number): Promise<number> {
    this.copied.push(`${jobId}/${attempt} from ${sourcePeer}: ${records}`);
    return records;
  }
  readonly copied: string[] = [];
  /** A real blob directory: the peer's artifacts are what it holds. */
  readonly dir = mkdtempSync(join(tmpdir(), 'peer-artifacts-'));
  readonly artifacts = new DirArtifactStorage(this.dir);
  listHeldArtifacts(key: ArtifactKey): Promise<ArtifactFile[] | undefined> {
    return this.artifacts.list(key);
  }
  readArtifact(key: ArtifactKey, path: string, offset: number, signal: AbortSignal): AsyncIterable<Uint8Array> {
    return this.artifacts.read(key, path, offset, signal);
  }
  async copyArtifacts(key: ArtifactKey, sourcePeer: string): Promise<number> {
    this.copied.push(`artifacts ${key.jobId}/${key.attempt} from ${sourcePeer}`);
    return (await this.artifacts.list(key))?.length ?? 0;
  }
  private take(agent: string, what: string): boolean {
    if (!this.connected.has(agent)) return false;
    this.delivered.push(`${agent}: ${what}`);
    return true;
  }
}

let server: Server;
let peer: TestPeer;
let address: string;
let clients: PeerClients;
let secret: PeerSecret;

beforeEach(async () => {
  peer = new TestPeer();
  server = new Server();
  secret = PeerSecret.of(randomBytes(32));
  new PeerServiceImpl(peer, secret, pino({ level: 'silent' })).addToServer(server);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  address = `127.0.0.1:${port}`;
  clients = new PeerClients({ secret });
});

afterEach(async () => {
  rmSync(peer.dir, { recursive: true, force: true });
  clients.close();
  await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
});

const assign: Assign = {
  jobId: JOB,
  attempt: 2,
  spec: JobSpec.fromPartial({ name: 'build', argv: ['make'] }),
  deadline: undefined,
  jobToken: '',
  secretEnv: {},
  secretFiles: [],
  traceParent: '',
  traceState: '',
};

async function collect(it: AsyncIterable<LogRecord>): Promise<string[]> {
  const out: string[] = [];
  for await (const r of it) out.push(`${r.seq}:${Buffer.from(r.data).toString().trim()}`);
  return out;
}

describe('PeerService', () => {
  it('delivers Assign, Cancel and Drain to the agent held by the peer', async () => {
    expect(await clients.deliverAssign(address, 'runner-1', assign)).toBe(true);
    expect(await clients.deliverCancel(address, 'runner-1', { jobId: JOB, attempt: 2, graceSeconds: 5, reason: 'user' })).toBe(true);
    expect(await clients.deliverDrain(address, 'runner-1', { reason: 'maintenance' })).toBe(true);
    expect(peer.delivered).toEqual([`runner-1: assign ${JOB}/2`, `runner-1: cancel ${JOB}/2 5s`, 'runner-1: drain maintenance']);
    expect(await clients.deliverAssign(address, 'elsewhere', assign)).toBe(false);
  });

  it('refuses a request without its message, naming the field', async () => {
    const err = await clients.deliverDrain(address, 'runner-1', undefined as unknown as Drain).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PeerCallError);
    expect((err as PeerCallError).code).toBe(Status.INVALID_ARGUMENT);
    expect(((err as PeerCallError).cause as Error).message).toContain('drain');
  });

  it('passes CopyLog to the peer and refuses one missing a field, naming it', async () => {
    expect(await clients.copyLog(address, { jobId: JOB, attempt: 1, sourcePeer: 'p0', records: 3 }, 2_000)).toBe(3);
    expect(peer.copied).toEqual([`${JOB}/1 from p0: 3`]);
    for (const [request, field] of [
      [{ jobId: JOB, attempt: 1, sourcePeer: '', records: 3 }, 'source_peer'],
      [{ jobId: JOB, attempt: 0, sourcePeer: 'p0', records: 3 }, 'attempt'],
      [{ jobId: JOB, attempt: 1, sourcePeer: 'p0', records: 0 }, 'records'],
      [{ jobId: '', attempt: 1, sourcePeer: 'p0', records: 3 }, 'job_id'],
    ] as const) {
      const err = await clients.copyLog(address, request, 2_000).catch((e: unknown) => e);
      expect((err as PeerCallError).code, field).toBe(Status.INVALID_ARGUMENT);
      expect(((err as PeerCallError).cause as Error).message).toContain(field);
    }
    expect(peer.copied).toHaveLength(1);
  });

  it('streams a log and ends; resumes from a seq', async () => {
    expect(await collect(clients.readLog(address, { jobId: JOB, attempt: 1, fromSeq: 0, follow: false }))).toEqual([
      '0:line 0',
      '1:line 1',
      '2:line 2',
    ]);
    expect(await collect(clients.readLog(address, { jobId: JOB, attempt: 1, fromSeq: 2, follow: false }))).toEqual(['2:line 2']);
    const err = await collect(clients.readLog(address, { jobId: JOB, attempt: 7, fromSeq: 0, follow: false })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PeerCallError);
  });

  it('stops a followed log when the reader aborts, and tells the peer', async () => {
    const abort = new AbortController();
    const seen: number[] = [];
    const reading = (async () => {
      for await (const r of clients.readLog(address, { jobId: JOB, attempt: 1, fromSeq: 0, follow: true }, abort.signal)) {
        seen.push(r.seq);
        if (seen.length === 3) abort.abort(new Error('reader done'));
      }
    })();
    await expect(reading).rejects.toThrow('reader done');
    expect(seen).toEqual([0, 1, 2]);
    await waitUntil(() => peer.followAborted, { what: 'the peer to see the reader leave', timeoutMs: 5_000 });
  });

  it('lists and streams the artifacts a peer holds, from an offset; NOT_FOUND for an attempt it holds none of', async () => {
    const key = { jobId: JOB, attempt: 1 };
    const body = Buffer.alloc(600_000, 7);
    const file = { path: 'dist/app.bin', size: BigInt(body.length), sha256: createHash('sha256').update(body).digest('hex') };
    await peer.artifacts.begin(key, [file], DEFAULT_ARTIFACT_LIMITS);
    await peer.artifacts.append(key, file.path, 0, [body]);
    await peer.artifacts.commit(key);
    expect(await clients.listHeldArtifacts(address, key)).toEqual([file]);
    const read = async (offset: number): Promise<Buffer> => {
      const parts: Uint8Array[] = [];
      for await (const c of clients.readArtifact(address, { ...key, path: file.path, offset: BigInt(offset) })) parts.push(c);
      return Buffer.concat(parts);
    };
    expect((await read(0)).equals(body)).toBe(true);
    expect((await read(599_990)).length).toBe(10);
    const missing = await clients.listHeldArtifacts(address, { jobId: JOB, attempt: 2 }).catch((e: unknown) => e);
    expect((missing as PeerCallError).code).toBe(Status.NOT_FOUND);
    await expect(
      (async () => {
        for await (const c of clients.readArtifact(address, { ...key, path: 'nope', offset: 0n })) void c;
      })(),
    ).rejects.toMatchObject({ code: Status.NOT_FOUND });
  });

  it('fails fast against a peer that is not there, and after close', async () => {
    const started = Date.now();
    const err = await clients.deliverAssign('127.0.0.1:1', 'runner-1', assign).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PeerCallError);
    expect([Status.UNAVAILABLE, Status.DEADLINE_EXCEEDED]).toContain((err as PeerCallError).code);
    expect(Date.now() - started).toBeLessThan(10_000);
    clients.close();
    await expect(clients.deliverAssign(address, 'runner-1', assign)).rejects.toSatisfy(isMeshClosed);
  });
});

/** Each PeerService method, called on a raw client with the metadata given; resolves with the call's error, if any. */
const CALLS: Record<string, (c: PeerServiceClient, md: Metadata) => Promise<ServiceError | undefined>> = {
  DeliverAssign: (c, md) => unaryError((cb) => c.deliverAssign({ agent: 'runner-1', assign }, md, cb)),
  DeliverCancel: (c, md) =>
    unaryError((cb) => c.deliverCancel({ agent: 'runner-1', cancel: { jobId: JOB, attempt: 2, graceSeconds: 5, reason: 'x' } }, md, cb)),
  DeliverDrain: (c, md) => unaryError((cb) => c.deliverDrain({ agent: 'runner-1', drain: { reason: 'x' } }, md, cb)),
  CopyLog: (c, md) => unaryError((cb) => c.copyLog({ jobId: JOB, attempt: 1, sourcePeer: 'p0', records: 3 }, md, cb)),
  ReadLog: (c, md) =>
    new Promise((resolve) => {
      const call = c.readLog({ jobId: JOB, attempt: 1, fromSeq: 0, follow: false }, md);
      call.on('data', () => undefined);
      call.on('error', (err: ServiceError) => resolve(err));
      call.on('end', () => resolve(undefined));
    }),
};

function unaryError(invoke: (cb: (err: ServiceError | null) => void) => void): Promise<ServiceError | undefined> {
  return new Promise((resolve) => invoke((err) => resolve(err ?? undefined)));
}

function metadata(entries: Record<string, string>): Metadata {
  const md = new Metadata();
  for (const [k, v] of Object.entries(entries)) md.set(k, v);
  return md;
}

describe('PeerService refuses everyone but the peers of its cluster', () => {
  const other = PeerSecret.of(randomBytes(32));
  const cases: Array<[string, () => Metadata, Status]> = [
    ['no credential', () => new Metadata(), Status.UNAUTHENTICATED],
    ["another cluster's peer token", () => metadata({ [PEER_METADATA_KEY]: other.token() }), Status.UNAUTHENTICATED],
    ['garbage as the peer token', () => metadata({ [PEER_METADATA_KEY]: 'x' }), Status.UNAUTHENTICATED],
    ['a client bearer token', () => metadata({ authorization: 'Bearer rmt_0123456789abcdef' }), Status.PERMISSION_DENIED],
    [
      'an agent credential',
      () => metadata({ 'x-runmesh-agent-name': 'runner-1', 'x-runmesh-agent-credential': 'rmc_0123456789abcdef' }),
      Status.PERMISSION_DENIED,
    ],
    ['a join token', () => metadata({ 'x-runmesh-join-token': 'rmj_0123456789abcdef' }), Status.PERMISSION_DENIED],
  ];

  for (const [what, md, code] of cases) {
    it(`refuses ${what} on every method, before any handler runs`, async () => {
      const raw = new PeerServiceClient(address, credentials.createInsecure());
      try {
        for (const [method, call] of Object.entries(CALLS)) {
          const err = await call(raw, md());
          expect(err?.code, method).toBe(code);
          expect(err?.details, method).not.toContain(secret.token());
        }
      } finally {
        raw.close();
      }
      expect(peer.delivered).toEqual([]);
      expect(peer.copied).toEqual([]);
    });
  }

  it("accepts the cluster's token on every method, also beside a bearer token", async () => {
    const raw = new PeerServiceClient(address, credentials.createInsecure());
    try {
      for (const [method, call] of Object.entries(CALLS)) {
        expect(await call(raw, metadata({ [PEER_METADATA_KEY]: secret.token() })), method).toBeUndefined();
      }
      expect(await CALLS.DeliverDrain!(raw, metadata({ [PEER_METADATA_KEY]: secret.token(), authorization: 'Bearer x' }))).toBeUndefined();
    } finally {
      raw.close();
    }
    expect(peer.delivered).toHaveLength(4);
  });

  it('refuses a client whose secret is not the cluster one, with UNAUTHENTICATED', async () => {
    const stranger = new PeerClients({ secret: other });
    try {
      const err = await stranger.deliverAssign(address, 'runner-1', assign).catch((e: unknown) => e);
      expect((err as PeerCallError).code).toBe(Status.UNAUTHENTICATED);
      const read = await collect(stranger.readLog(address, { jobId: JOB, attempt: 1, fromSeq: 0, follow: false })).catch((e: unknown) => e);
      expect((read as PeerCallError).code).toBe(Status.UNAUTHENTICATED);
    } finally {
      stranger.close();
    }
    expect(peer.delivered).toEqual([]);
  });
});
