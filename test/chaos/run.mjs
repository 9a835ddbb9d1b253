// `npm run chaos [-- --long]`: the fault suite (test/chaos, and the fault tests
// beside it), then a table of each scenario's figures: time to re-queue,
// duplicate runs, lost jobs, lost log records.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const long = process.argv.includes('--long');
const figures = join(mkdtempSync(join(tmpdir(), 'runmesh-chaos-')), 'figures.jsonl');
const files = [
  'test/chaos/',
  'test/faults.test.ts',
  'test/data-dir.test.ts',
  'test/disk-full.test.ts',
  'test/disconnected-grace.test.ts',
  'test/socket-sweep.test.ts',
];
const run = spawnSync('npx', ['vitest', 'run', ...files], {
  stdio: 'inherit',
  env: { ...process.env, RUNMESH_CHAOS_FIGURES: figures, RUNMESH_CHAOS_LONG: long ? '1' : '' },
});
let rows = [];
try {
  rows = readFileSync(figures, 'utf8')
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
} catch {
  // no scenario recorded figures
}
const cell = (v) => (v === undefined ? '-' : String(v));
const lines = [
  '| scenario | time to re-queue | jobs | duplicate runs | lost jobs | lost log records | retried |',
  '|---|---|---|---|---|---|---|',
  ...rows.map(
    (r) =>
      `| ${r.scenario} | ${r.requeueMs === undefined ? '-' : `${(r.requeueMs / 1000).toFixed(1)} s`} | ${r.jobs} | ${cell(r.duplicates)} | ${r.lost} | ${cell(r.lostLogs)} | ${r.retried} |`,
  ),
];
console.log(`\n${lines.join('\n')}\n`);
process.exit(run.status ?? 1);
