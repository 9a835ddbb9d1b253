/** `npm run bench`: every benchmark in one run, figures on stdout. */
import { benchEtcd } from './etcd.js';
import { benchRouting } from './routing.js';
import { benchSpine } from './spine.js';
import { benchTransports } from './transports.js';

async function main(): Promise<void> {
  process.stdout.write(`runmesh bench — node ${process.version}, ${new Date().toISOString()}\n`);
  await benchSpine();
  await benchTransports();
  await benchRouting();
  await benchEtcd();
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
