import { execFileSync } from 'node:child_process';
import { symlinkSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { ConnectRequest, JobProgress } from '../../proto/gen/runmesh/v1/agent.js';
import { JOB_PROGRESS_FEATURE } from '../../proto/protocol.js';
import { matcherFor } from '../masking/index.js';
import { AttemptProgress, type ProgressLink } from './attempt.js';

const log = pino({ level: 'silent' });
const dirs: string[] = [];

afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

function link(features: string[]): ProgressLink & { sent: JobProgress[] } {
  const sent: JobProgress[] = [];
  const send = (m: ConnectRequest): boolean => (m.msg?.$case === 'jobProgress' && sent.push(m.msg.value), true);
  return { signal: new AbortController().signal, send, features: new Set(features), sent };
}

async function attempt(secrets: string[] = []): Promise<{ p: AttemptProgress; file: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'runmesh-progress-'));
  dirs.push(dir);
  const file = join(dir, 'progress');
  await writeFile(file, '');
  return { p: new AttemptProgress({ jobId: 'j', attempt: 1 }, file, matcherFor(secrets), log), file };
}

describe('AttemptProgress', () => {
  it('sends nothing over a connection whose control plane did not say it takes JobProgress (one from before it)', async () => {
    const { p } = await attempt();
    const old = link([]);
    p.attach(old);
    p.record({ seq: 0, stream: 'stdout', data: Buffer.from('::progress 5\n') });
    await p.end();
    expect(old.sent).toEqual([]);
    // The next connection, to one that takes it, gets the whole state at once.
    const now = link([JOB_PROGRESS_FEATURE]);
    p.attach(now);
    expect(now.sent.map((s) => s.percent)).toEqual([5]);
  });

  it('parses each record once however often the log is re-sent, masks before parsing, and reads the progress file to its end', async () => {
    const { p, file } = await attempt(['s3cr3t-value']);
    const l = link([JOB_PROGRESS_FEATURE]);
    p.attach(l);
    const r0 = { seq: 0, stream: 'stdout' as const, data: Buffer.from('::notice once\n') };
    p.record(r0);
    p.record({ seq: 1, stream: 'stderr', data: Buffer.from('::notice stderr is never parsed\n') });
    p.record(r0); // a resend
    await writeFile(file, '::warning from the file s3cr3t-value\n::progress 60 last line without newline');
    await p.end();
    const last = l.sent.at(-1)!;
    expect(last.annotations.map((a) => [a.text, a.fromFile])).toEqual([
      ['once', false],
      ['from the file ***', true],
    ]);
    expect(last.percent).toBe(60);
    expect(p.next).toBe(2);
  });

  it('does not hang on a FIFO or follow a link the job put in place of its progress file', async () => {
    for (const replace of [(f: string) => execFileSync('mkfifo', [f]), (f: string) => symlinkSync('/etc/hostname', f)]) {
      const { p, file } = await attempt();
      await rm(file);
      replace(file);
      const l = link([JOB_PROGRESS_FEATURE]);
      p.attach(l);
      await p.end();
      expect(l.sent).toEqual([]);
    }
  });
});
