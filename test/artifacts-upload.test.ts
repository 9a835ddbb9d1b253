/**
 * The agent's half of artifacts, with a real `runmesh server` and `runmesh
 * agent` as processes: a 200 MB artifact whose upload is cut by a kill -9 of
 * the agent resumes from what the peer holds once the agent is back on the
 * same work dir, and reads back byte-identical; an upload over the peer's
 * per-file limit fails a job that succeeded (failure ARTIFACTS, naming the
 * file) unless its artifacts were optional; a job that failed still uploads.
 */
import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArtifactServiceClient, type GetArtifactResponse } from '../proto/gen/runmesh/v1/artifact.js';
import { FailureCategory, JobState } from '../proto/gen/runmesh/v1/job.js';
import { credentials } from '@grpc/grpc-js';
import { adminToken, bearer, bigintSafe, TestClient } from './support/client.js';
import { startAgent, startServer, stopAll, type AgentProc, type ServerProc } from './support/processes.js';
import { waitUntil } from './support/wait.js';

const BIG = 200_000_000;
let server: ServerProc;
let agent: AgentProc;
let client: TestClient;
let artifacts: ArtifactServiceClient;

beforeAll(async () => {
  // A long heartbeat timeout: the killed agent is back before its attempt could be taken for lost.
  server = await startServer({ args: ['--heartbeat-timeout', '10s', '--artifact-max-file', String(BIG)] });
  const token = adminToken(server.dataDir);
  client = new TestClient(server.address, token);
  artifacts = new ArtifactServiceClient(server.address, credentials.createInsecure(), { interceptors: [bearer(token)] });
  agent = await startAgent(server.address, { name: 'uploader', slots: 4 });
  await client.waitAgents(1);
}, 60_000);

afterAll(async () => {
  artifacts?.close();
  client?.close();
  await stopAll();
});

/** The agent's log lines (pino JSON) with this message. */
const lines = (p: AgentProc, msg: string): Array<Record<string, unknown>> =>
  p
    .output()
    .split('\n')
    .filter((l) => l.includes(`"msg":"${msg}"`))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

/** The sha256 and size of a stored artifact, read through ArtifactService.GetArtifact. */
function readBack(jobId: string, path: string): Promise<{ sha256: string; size: number; listed?: string }> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    let size = 0;
    let listed: string | undefined;
    const s = artifacts.getArtifact({ jobId, attempt: 0, fromNeed: '', path });
    s.on('data', (m: GetArtifactResponse) => {
      if (m.msg?.$case === 'file') listed = m.msg.value.sha256;
      else if (m.msg?.$case === 'data') {
        hash.update(m.msg.value);
        size += m.msg.value.length;
      }
    });
    s.on('error', reject);
    s.on('end', () => resolve({ sha256: hash.digest('hex'), size, listed }));
  });
}

describe('an artifact upload cut by a kill -9 of the agent', () => {
  it('resumes from what the peer holds once the agent is back, and the 200 MB file reads back byte-identical', async () => {
    const job = await client.submit({
      script: `head -c ${BIG} /dev/urandom > big.bin && sha256sum big.bin && echo small > small.txt`,
      artifacts: ['*.bin', 'small.txt'],
    });
    // big.bin is the manifest's first file (sorted): its bytes land in .uploads/<job>/1/0.part until checked.
    const part = join(server.dataDir, 'blobs', 'artifacts', '.uploads', job.id, '1', '0.part');
    const partSize = (): number => statSync(part, { throwIfNoEntry: false })?.size ?? 0;
    const cut = await waitUntil(() => partSize() >= 8 << 20 && partSize(), {
      what: 'the peer to hold 8 MiB of big.bin',
      timeoutMs: 30_000,
      intervalMs: 5,
      show: () => agent.output().slice(-3000),
    });
    await agent.kill9();
    expect(cut).toBeLessThan(BIG); // cut mid-file
    const back = await startAgent(server.address, { name: 'uploader', workDir: agent.workDir, slots: 4 });

    const done = await client.waitDone(job.id, 60_000);
    expect(done.state, JSON.stringify(done.attempts, bigintSafe)).toBe(JobState.JOB_STATE_SUCCEEDED);
    expect(done.attempts).toHaveLength(1);
    expect(done.attempts[0]?.artifacts).toMatchObject({ files: 2, bytes: BigInt(BIG + 'small\n'.length), error: '' });
    const resumed = lines(back, 'resuming an artifact upload').find((l) => l.path === 'big.bin');
    expect(resumed, back.output().slice(-3000)).toBeDefined();
    expect(Number(resumed?.offset)).toBeGreaterThan(0);

    const printed = /^([0-9a-f]{64})\s+big\.bin$/m.exec((await client.logs(job.id)).stdout)?.[1];
    const got = await readBack(job.id, 'big.bin');
    expect(got).toEqual({ sha256: printed, size: BIG, listed: printed });
    agent = back;
  }, 90_000);
});

describe('an upload the peer refuses', () => {
  it('fails a job that succeeded with ARTIFACTS naming the file, unless optional; a failed job still uploads; one whose globs match nothing says so', async () => {
    // Sparse: over the per-file limit without writing 200 MB.
    const script = `truncate -s ${BIG + 1} huge.bin && echo ok > report.xml`;
    const [required, optional, failing, unmatched] = await Promise.all([
      client.submit({ script, artifacts: ['huge.bin', 'report.xml'] }),
      client.submit({ script, artifacts: ['huge.bin', 'report.xml'], artifactsOptional: true }),
      client.submit({ script: 'echo failed > report.xml; exit 3', artifacts: ['report.xml'] }),
      client.submit({ script: 'true', artifacts: ['dist/**'] }),
    ]);
    const over = /^huge\.bin: 200000001 bytes, over the per-file limit of 200000000 \(--artifact-max-file\)$/;

    const r = await client.waitDone(required.id, 30_000);
    expect(r.state, JSON.stringify(r.attempts, bigintSafe)).toBe(JobState.JOB_STATE_FAILED);
    expect(r.failure).toBe(FailureCategory.FAILURE_CATEGORY_ARTIFACTS);
    expect(r.attempts[0]?.message).toMatch(/^artifacts: huge\.bin: 200000001 bytes, over the per-file limit/);
    expect(r.attempts[0]?.artifacts?.error).toMatch(over);

    const o = await client.waitDone(optional.id, 30_000);
    expect(o.state, JSON.stringify(o.attempts, bigintSafe)).toBe(JobState.JOB_STATE_SUCCEEDED);
    expect(o.attempts[0]?.artifacts?.error).toMatch(over);

    const f = await client.waitDone(failing.id, 30_000);
    expect(f.state).toBe(JobState.JOB_STATE_FAILED);
    expect(f.failure).toBe(FailureCategory.FAILURE_CATEGORY_EXIT_CODE);
    expect(f.attempts[0]?.artifacts).toMatchObject({ files: 1, error: '' });

    // Nothing matched: not an error, but the attempt says so (no files, no error) rather than nothing at all.
    const u = await client.waitDone(unmatched.id, 30_000);
    expect(u.state).toBe(JobState.JOB_STATE_SUCCEEDED);
    expect(u.attempts[0]?.artifacts).toEqual({ files: 0, bytes: 0n, error: '' });
  }, 60_000);
});
