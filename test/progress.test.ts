/**
 * Progress and annotations end to end (issue 21), with real processes: a
 * control plane, a real agent, and a job that prints `::progress`,
 * `::notice`, groups (one left open), a stop-commands block, a flood of
 * progress lines, and writes to $RUNMESH_PROGRESS. A Watch client sees the
 * progress while the job runs and the groups, each pointing at its line in
 * the log; the log keeps every line as printed; the flood costs a handful of
 * store writes, not thousands.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ClientReadableStream } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AnnotationKind, JobState, LogStream, type Job, type WatchResponse } from '../proto/gen/runmesh/v1/job.js';
import { adminToken, TestClient } from './support/client.js';
import { startAgent, startServer, stopAll, type AgentProc, type ServerProc } from './support/processes.js';
import { waitUntil } from './support/wait.js';

let server: ServerProc;
let agent: AgentProc;
let client: TestClient;

beforeAll(async () => {
  server = await startServer();
  agent = await startAgent(server.address, { name: 'progress-1' });
  client = new TestClient(server.address, adminToken(server.dataDir));
  await client.waitAgents(1);
}, 60_000);

afterAll(async () => {
  client?.close();
  await stopAll();
});

const SCRIPT = `
echo "::group build"
echo "::progress 10 starting"
echo compiling
echo "::notice built ok"
echo "::endgroup"
echo "::warning from the file" >> "$RUNMESH_PROGRESS"
echo "::stop-commands::zz9"
echo "::error not parsed"
echo "::zz9::"
echo "echo ::error not at line start"
i=0; while [ $i -lt 3000 ]; do echo "::progress $((i % 100)) flood"; i=$((i + 1)); done
echo "::progress 50 halfway"
while [ ! -e go ]; do sleep 0.05; done
echo "::group unclosed"
echo inside
printf '::progress 100 do'; printf 'ne\\n'
`;

describe('progress and annotations', () => {
  it('reach a Watch client while the job runs, groups point at their lines, and the log keeps them as printed', async () => {
    const events: Job[] = [];
    const watch: ClientReadableStream<WatchResponse> = client.jobs.watch({ ids: [] });
    watch.on('data', (r: WatchResponse) => r.job && events.push(r.job));
    watch.on('error', () => undefined); // cancelled at the end
    try {
      const job = await client.submit({ name: 'progress', script: SCRIPT, timeoutSeconds: 60 });
      const mine = (): Job[] => events.filter((j) => j.id === job.id);
      // Running, at 50% after the flood: the job waits for us, so this is seen before it ends.
      const halfway = await waitUntil(() => mine().find((j) => j.progress?.percent === 50 && j.progress.text === 'halfway'), {
        what: 'a Watch event with progress 50% halfway',
        timeoutMs: 20_000,
      });
      expect(halfway.state).toBe(JobState.JOB_STATE_RUNNING);
      expect(halfway.annotations.map((a) => [AnnotationKind[a.kind], a.text, a.fromFile])).toEqual([
        ['ANNOTATION_KIND_GROUP_START', 'build', false],
        ['ANNOTATION_KIND_NOTICE', 'built ok', false],
        ['ANNOTATION_KIND_GROUP_END', '', false],
        ['ANNOTATION_KIND_WARNING', 'from the file', true],
      ]);
      await writeFile(join(agent.workDir, 'attempts', `${job.id}.1`, 'work', 'go'), '');
      const done = await client.waitDone(job.id);
      expect(done.state).toBe(JobState.JOB_STATE_SUCCEEDED);
      await waitUntil(() => mine().some((j) => j.state === JobState.JOB_STATE_SUCCEEDED), { what: 'the final Watch event' });
      const last = mine().at(-1)!;
      expect(last.progress).toMatchObject({ attempt: 1, percent: 100, text: 'done', droppedAnnotations: 0 });
      const kinds = last.annotations.map((a) => AnnotationKind[a.kind]);
      expect(kinds).toEqual([
        'ANNOTATION_KIND_GROUP_START',
        'ANNOTATION_KIND_NOTICE',
        'ANNOTATION_KIND_GROUP_END',
        'ANNOTATION_KIND_WARNING',
        'ANNOTATION_KIND_GROUP_START',
        'ANNOTATION_KIND_GROUP_END', // the unclosed group, closed where stdout ended
      ]);
      // A thousand-odd progress changes, a few store writes (one a second at most): every write is a Watch event.
      expect(mine().length).toBeLessThan(40);

      // The log has every line as printed, commands and lookalikes included.
      const log = await client.logs(job.id);
      for (const line of [
        '::progress 10 starting',
        '::notice built ok',
        '::error not parsed',
        '::zz9::',
        '::group unclosed',
        '::progress 100 done',
      ])
        expect(log.stdout.split('\n')).toContain(line);
      // Each group boundary points at its own line: (seq, offset) in the stdout records.
      const stdout = (seq: number): Buffer => {
        const r = log.records.find((x) => x.seq === seq && x.stream === LogStream.LOG_STREAM_STDOUT);
        return Buffer.from(r?.data ?? []);
      };
      const lineAt = (i: number): string => {
        const a = last.annotations[i]!;
        return stdout(a.seq).subarray(a.offset).toString().split('\n')[0] ?? '';
      };
      expect(lineAt(0)).toBe('::group build');
      expect(lineAt(1)).toBe('::notice built ok');
      expect(lineAt(2)).toBe('::endgroup');
      expect(lineAt(4)).toBe('::group unclosed');
      const end = last.annotations[5]!;
      expect(end.offset).toBe(stdout(end.seq).length); // the end of stdout
    } finally {
      watch.cancel();
    }
  }, 40_000);
});
