/**
 * Artifact upload and download against the machine's own ceiling, in one run:
 * - the floor: what any upload of the file costs on this host, done in this
 *   process: hash it (the agent's manifest), copy it with an fsync (the
 *   peer's write), hash the copy (the peer's check);
 * - a real agent and control plane (embedded store, child processes): a job
 *   writes the file, and the time from its exit to its stored result is the
 *   upload (walk, hash, Begin, 256 KiB messages, fsync, check, commit);
 * - GetArtifact of the same file over gRPC, against reading it from disk.
 * Each figure is printed beside the floor, with the ratio.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, open, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { credentials } from '@grpc/grpc-js';
import { ArtifactServiceClient, type GetArtifactResponse } from '../proto/gen/runmesh/v1/artifact.js';
import { JobState } from '../proto/gen/runmesh/v1/job.js';
import { adminToken, bearer, TestClient } from '../test/support/client.js';
import { startAgent, startServer, stopAll, tempDir } from '../test/support/processes.js';
import { line, round } from './stats.js';

const MB = 1_000_000;
const SIZE_MB = 200;

async function sha256Of(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(file, { highWaterMark: 256 * 1024 }) as AsyncIterable<Buffer>) h.update(c);
  return h.digest('hex');
}

/** Hash, copy with fsync, hash the copy: the work an upload cannot avoid, in ms. */
async function floorMs(file: string, dir: string): Promise<number> {
  const t0 = performance.now();
  await sha256Of(file);
  const copy = join(dir, 'copy.bin');
  await copyFile(file, copy);
  const fh = await open(copy, 'r+');
  await fh.sync();
  await fh.close();
  await sha256Of(copy);
  const ms = performance.now() - t0;
  await rm(copy);
  return ms;
}

export async function benchArtifacts(): Promise<void> {
  const dir = await tempDir('runmesh-bench-artifacts-');
  const source = join(dir, 'big.bin');
  // Random bytes, written once: the job copies this file into its workspace.
  const chunk = randomBytes(MB);
  const fh = await open(source, 'w');
  for (let i = 0; i < SIZE_MB; i++) await fh.write(chunk);
  await fh.close();
  const floor = Math.min(await floorMs(source, dir), await floorMs(source, dir));
  const server = await startServer();
  await startAgent(server.address, { name: 'bench-artifacts', slots: 1 });
  const client = new TestClient(server.address, adminToken(server.dataDir));
  const reader = new ArtifactServiceClient(server.address, credentials.createInsecure(), {
    interceptors: [bearer(adminToken(server.dataDir))],
  });
  try {
    await client.waitAgents(1, 30_000);
    const uploads: number[] = [];
    let jobId = '';
    for (let i = 0; i < 2; i++) {
      const job = await client.submit({ argv: ['cp', source, 'big.bin'], artifacts: ['big.bin'] });
      const done = await client.waitDone(job.id, 120_000);
      if (done.state !== JobState.JOB_STATE_SUCCEEDED)
        throw new Error(`bench job ${job.id}: ${JobState[done.state]} ${done.attempts.at(-1)?.message}`);
      const exited = Date.parse(done.attempts.at(-1)?.finishedAt ?? '');
      const stored = Date.parse(done.timeline.find((t) => t.state === JobState.JOB_STATE_SUCCEEDED)?.at ?? '');
      uploads.push(stored - exited);
      jobId = job.id;
    }
    const upload = Math.min(...uploads);
    line(`artifact upload, ${SIZE_MB} MB, agent → peer`, {
      ms: upload,
      mb_per_s: round((SIZE_MB * 1000) / upload, 1),
      floor_ms: round(floor, 0),
      floor_mb_per_s: round((SIZE_MB * 1000) / floor, 1),
      vs_floor: `${round(upload / floor, 2)}×`,
    });
    const t0 = performance.now();
    let bytes = 0;
    const call = reader.getArtifact({ jobId, attempt: 0, fromNeed: '', path: 'big.bin' });
    for await (const m of call as AsyncIterable<GetArtifactResponse>) if (m.msg?.$case === 'data') bytes += m.msg.value.byteLength;
    const download = performance.now() - t0;
    if (bytes !== SIZE_MB * MB) throw new Error(`downloaded ${bytes} bytes of ${SIZE_MB * MB}`);
    const r0 = performance.now();
    await sha256Of(source);
    const readFloor = performance.now() - r0;
    line(`artifact download (GetArtifact), ${SIZE_MB} MB`, {
      ms: round(download, 0),
      mb_per_s: round((SIZE_MB * 1000) / download, 1),
      floor_ms: round(readFloor, 0),
      vs_floor: `${round(download / readFloor, 2)}×`,
    });
  } finally {
    reader.close();
    client.close();
    await stopAll();
    await writeFile(source, '');
  }
}
