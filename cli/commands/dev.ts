/** `runmesh dev`: a control plane and N local agents in one process, embedded store. */
import { platform, arch } from 'node:os';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { DEFAULT_SERVER } from '../../transport/address.js';
import { address, hostPort, logLevel, whole } from '../flags.js';
import {
  artifactLimitsOf,
  artifactOptions,
  devSecretsKeyFile,
  joinTokenFor,
  retentionOptions,
  untilSignal,
  type ArtifactFlags,
} from './serve.js';
import { keepRunningWhenOutputCloses } from '../pipes.js';
import { untilHangup } from '../reload.js';
import { configPath, saveContext } from '../context.js';
import { useConfigFile } from '../config-file.js';

interface DevFlags extends ArtifactFlags {
  agents: number;
  slots: number;
  dataDir: string;
  listen: string;
  httpListen: string;
  jobRetention: number;
  auditRetention: number;
  maxEndedJobs: number;
  logLevel: string;
}

export function registerDev(program: Command): void {
  const dev = program
    .command('dev')
    .description('run a control plane plus local agents (embedded store): the quickest way to try runmesh')
    .option('--agents <n>', 'local agents', whole('--agents'), 2)
    .option('--slots <n>', 'jobs each agent runs at once', whole('--slots'), 4)
    .option('--data-dir <dir>', 'local state', './.runmesh')
    .option('--listen <addr>', 'gRPC address', address('--listen'), DEFAULT_SERVER)
    .option('--http-listen <addr>', 'HTTP address', hostPort('--http-listen'), '127.0.0.1:7434');
  artifactOptions(retentionOptions(dev))
    .option('--log-level <level>', 'trace|debug|info|warn|error', (v: string) => logLevel(v), process.env.RUNMESH_LOG_LEVEL ?? 'warn')
    .action(async (f: DevFlags) => {
      keepRunningWhenOutputCloses();
      const { createLogger } = await import('../logging.js'); // pino: see cli/program.ts
      const logger = createLogger(f.logLevel);
      const { token } = await joinTokenFor(f.dataDir, undefined);
      const [{ ControlPlane }, { Agent }] = await Promise.all([import('../../control-plane/server.js'), import('../../agent/agent.js')]);
      const tracing = await (await import('../../transport/tracing/setup.js')).startTracing(process.env, 'runmesh-dev', logger);
      const cp = await ControlPlane.start({
        listen: [f.listen],
        httpListen: f.httpListen,
        dataDir: f.dataDir,
        joinToken: token,
        jobRetentionMs: f.jobRetention,
        auditRetentionMs: f.auditRetention,
        maxEndedJobs: f.maxEndedJobs,
        artifactLimits: artifactLimitsOf(f),
        secretKeys: { keyFile: await devSecretsKeyFile(f.dataDir), keyEnv: '', previousKeyFiles: [] },
        logger,
        tracing,
      });
      const agents = Array.from(
        { length: f.agents },
        (_, i) =>
          new Agent({
            servers: [cp.address],
            joinToken: token,
            name: `dev-${i + 1}`,
            labels: { os: platform(), arch: arch(), pool: 'dev' },
            capacity: { slots: f.slots },
            workDir: join(f.dataDir, 'agents', `dev-${i + 1}`),
            shutdownGraceMs: 5000,
            logger,
            tracing,
          }),
      );
      await Promise.all(agents.map((a) => a.start()));
      const server = cp.address === DEFAULT_SERVER ? '' : ` --server ${cp.address}`;
      // The CLI on this machine finds the admin token through its config file: no flags needed.
      const tokenFile = resolve(f.dataDir, 'admin.token');
      const signedIn = existsSync(tokenFile)
        ? (saveContext('dev', { server: cp.address, tokenFile }), `admin token in ${tokenFile} (context "dev" in ${configPath()})`)
        : `no admin token in ${f.dataDir}: pass --token`;
      // Listening before the ready line: whoever reads it may signal at once (the terminal closing, a test).
      const stop = Promise.race([untilSignal(), untilHangup()]); // the terminal going away stops it too, cleanly
      process.stdout.write(
        [
          `runmesh dev: control plane on ${cp.address} (http ${cp.httpAddress}), ${f.agents} agent(s) with ${f.slots} slot(s) each, data in ${f.dataDir}`,
          `runmesh dev: ${signedIn}`,
          'Try, in another terminal:',
          `  npx runmesh submit${server} --wait -- echo hello from runmesh`,
          `  npx runmesh jobs ls${server}`,
          `  npx runmesh agents ls${server}`,
          `  npx runmesh cluster status${server}`,
          'Ctrl-C to stop.',
          '',
        ].join('\n'),
      );
      await stop;
      process.stdout.write('runmesh dev: stopping\n');
      await Promise.all(agents.map((a) => a.shutdown(5000)));
      await cp.close();
      await tracing.shutdown();
    });
  // --config, without reloading: SIGHUP stops runmesh dev (its terminal went away).
  useConfigFile(dev);
}
