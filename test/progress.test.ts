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
import { AnnotationKind, Executor, JobState, LogStream, type Job, type WatchResponse } from '../proto/gen/runmesh/v1/job.js';
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
      // In the order the agent read them; stdout and the progress file are read side by side, so each is checked on its own.
      const fromStdout = (j: Job) => j.annotations.filter((a) => !a.fromFile).map((a) => [AnnotationKind[a.kind], a.text]);
      const fromFile = (j: Job) => j.annotations.filter((a) => a.fromFile).map((a) => [AnnotationKind[a.kind], a.text]);
      expect(fromStdout(halfway)).toEqual([
        ['ANNOTATION_KIND_GROUP_START', 'build'],
        ['ANNOTATION_KIND_NOTICE', 'built ok'],
        ['ANNOTATION_KIND_GROUP_END', ''],
      ]);
      expect(fromFile(halfway)).toEqual([['ANNOTATION_KIND_WARNING', 'from the file']]);
      await writeFile(join(agent.workDir, 'attempts', `${job.id}.1`, 'work', 'go'), '');
      const done = await client.waitDone(job.id);
      expect(done.state).toBe(JobState.JOB_STATE_SUCCEEDED);
      await waitUntil(() => mine().some((j) => j.state === JobState.JOB_STATE_SUCCEEDED), { what: 'the final Watch event' });
      const last = mine().at(-1)!;
      expect(last.progress).toMatchObject({ attempt: 1, percent: 100, text: 'done', droppedAnnotations: 0 });
      expect(fromStdout(last)).toEqual([
        ['ANNOTATION_KIND_GROUP_START', 'build'],
        ['ANNOTATION_KIND_NOTICE', 'built ok'],
        ['ANNOTATION_KIND_GROUP_END', ''],
        ['ANNOTATION_KIND_GROUP_START', 'unclosed'],
        ['ANNOTATION_KIND_GROUP_END', ''], // closed where stdout ended
      ]);
      expect(fromFile(last)).toEqual([['ANNOTATION_KIND_WARNING', 'from the file']]);
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
      const groups = last.annotations.filter((a) => !a.fromFile);
      const lineAt = (i: number): string => {
        const a = groups[i]!;
        return stdout(a.seq).subarray(a.offset).toString().split('\n')[0] ?? '';
      };
      expect(lineAt(0)).toBe('::group build');
      expect(lineAt(1)).toBe('::notice built ok');
      expect(lineAt(2)).toBe('::endgroup');
      expect(lineAt(3)).toBe('::group unclosed');
      const end = groups[4]!;
      expect(end.offset).toBe(stdout(end.seq).length); // the end of stdout
    } finally {
      watch.cancel();
    }
  }, 40_000);

  it('takes the progress file from a sandboxed job, which sees it and nothing else of the attempt dir', async (ctx) => {
    const offered = (await client.agents()).agents.some((a) => a.labels['runmesh.io/executor-sandbox'] !== undefined);
    if (!offered) return ctx.skip(); // no working bubblewrap on this host
    const job = await client.submit({
      script: 'echo "::progress 70 sandboxed" >> "$RUNMESH_PROGRESS"; ! ls "$(dirname "$RUNMESH_PROGRESS")/spec.json" 2>/dev/null',
      executor: Executor.EXECUTOR_SANDBOX,
    });
    const done = await client.waitDone(job.id);
    expect(done.state).toBe(JobState.JOB_STATE_SUCCEEDED);
    expect(done.progress).toMatchObject({ percent: 70, text: 'sandboxed' });
  }, 30_000);
});
