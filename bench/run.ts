/**
 * `npm run bench`: every benchmark in one run, figures on stdout.
 * `npm run bench -- etcd routing` runs just the named ones.
 */
import { benchArtifacts } from './artifacts.js';
import { benchCliStart } from './cli-start.js';
import { benchEtcd } from './etcd.js';
import { benchEtcdTls } from './etcd-tls.js';
import { benchExecutor } from './executor.js';
import { benchMetrics } from './metrics.js';
import { benchRouting } from './routing.js';
import { benchSpine } from './spine.js';
import { benchTracing } from './tracing.js';
import { benchTransports } from './transports.js';
import { removeTempDirs } from '../test/support/processes.js';

const BENCHES: Record<string, () => Promise<unknown>> = {
  spine: benchSpine,
  transports: benchTransports,
  routing: benchRouting,
  etcd: benchEtcd,
  'etcd-tls': benchEtcdTls,
  executor: benchExecutor,
  metrics: benchMetrics,
  'cli-start': benchCliStart,
  tracing: benchTracing,
  artifacts: benchArtifacts,
};

async function main(): Promise<void> {
  const wanted = process.argv.slice(2);
  const unknown = wanted.filter((w) => !(w in BENCHES));
  if (unknown.length > 0) throw new Error(`unknown bench ${unknown.join(', ')} (have: ${Object.keys(BENCHES).join(', ')})`);
  process.stdout.write(`runmesh bench — node ${process.version}, ${new Date().toISOString()}\n`);
  try {
    for (const [name, run] of Object.entries(BENCHES)) if (wanted.length === 0 || wanted.includes(name)) await run();
  } finally {
    await removeTempDirs();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
