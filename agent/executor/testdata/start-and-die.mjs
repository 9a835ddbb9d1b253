// An agent that starts one attempt from the compiled executor, reads its
// records for a while like a real agent would, and waits to be SIGKILLed.
// Usage: node start-and-die.mjs <workDir> <jobId> <script>
import { pino } from 'pino';
import { createExecutor } from '../../../dist/agent/executor/index.js';

const [workDir, jobId, script] = process.argv.slice(2);
const executor = createExecutor({ workDir, logger: pino({ level: 'silent' }) });
const handle = await executor.start({
  jobId,
  attempt: 1,
  argv: [],
  script,
  env: {},
  deadline: Date.now() + 120_000,
  graceSeconds: 2,
  executor: 'shell',
  limits: { memoryBytes: 0, cpuMillis: 0, cpuWeight: 0, pids: 0 },
  network: true,
});
process.stdout.write(`${JSON.stringify({ dir: handle.dir })}\n`);
let seen = 0;
for await (const r of handle.records(0, new AbortController().signal)) {
  seen = r.seq + 1;
  if (seen === 1) process.stdout.write('reading\n');
}
process.stdout.write(`finished ${seen}\n`);
setInterval(() => undefined, 60_000); // stay until killed
