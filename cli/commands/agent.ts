/** `runmesh agent`: run jobs for a control plane. */
import { isDeepStrictEqual } from 'node:util';
import type { Command } from 'commander';
import { DEFAULT_SERVER } from '../../transport/address.js';
import { addresses, collectList, durationMs, durationOption, logLevel, parseLabels, positiveDurationMs, whole } from '../flags.js';
import { CliError, UsageError } from '../errors.js';
import { untilSignal } from './serve.js';
import { parseJoinString } from '../../agent/join-string.js';
import { isPinMismatch, parseFingerprint } from '../../transport/index.js';
import { keepRunningWhenOutputCloses } from '../pipes.js';
import { reloadOnHangup } from '../reload.js';
import { useConfigFile } from '../config-file.js';
import { argsAfter, systemdUnit } from '../systemd.js';
import { DEFAULT_PIDS_LIMIT } from '../../agent/options.js';
import { DEFAULT_CACHE_MAX, parseSize } from '../../agent/cache/cache.js';
import { isReservedLabel, RESERVED_LABEL_PREFIX } from '../../proto/executor-labels.js';

interface AgentFlags {
  server: string[];
  joinToken?: string;
  name?: string;
  labels: string[];
  slots?: number;
  cpu?: number;
  memory?: number;
  workDir: string;
  shutdownGrace: number;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
  caFingerprint?: string;
  allowInsecureFallback?: boolean;
  standbySupervisor: boolean;
  disconnectedGrace?: number;
  jobUser?: string;
  pidsLimit: number;
  cgroupParent?: string;
  cgroups: boolean;
  trustedKeys?: string;
  cacheMax: number;
  logLevel?: string;
  printSystemdUnit?: boolean;
}

export function registerAgent(program: Command): void {
  const agent = program
    .command('agent')
    .description('run an agent that takes jobs from the control plane')
    .option('--server <addrs>', 'control-plane addresses in order of preference (comma-separated or repeated)', addresses('--server'), [])
    .option(
      '--join-token <token>',
      "the control plane's join token, or the join string `runmesh tokens create --role agent` prints (token@sha256:<CA fingerprint>)",
      process.env.RUNMESH_JOIN_TOKEN,
    )
    .option('--name <name>', 'unique agent name (default: host name)')
    .option('--labels <k=v,...>', 'labels jobs can select on', collectList, [])
    .option('--slots <n>', 'jobs run at once', whole('--slots'))
    .option('--cpu <millicores>', 'cpu offered (default: all cores)', whole('--cpu'))
    .option('--memory <mb>', 'memory offered in MB (default: all memory)', whole('--memory'))
    .option('--work-dir <dir>', 'workspaces and log spools', './.runmesh-agent')
    .addOption(durationOption('--shutdown-grace <duration>', 'on SIGTERM, how long running jobs may finish', durationMs, 60_000))
    .option('--tls-ca <file>', "CA that signed the control plane's certificate (PEM)")
    .option('--tls-cert <file>', 'client certificate for mTLS (PEM)')
    .option('--tls-key <file>', 'client key for mTLS (PEM)')
    .option(
      '--ca-fingerprint <sha256:hex>',
      "pin the control plane's CA (a --tls-auto server's): fetched on first contact into <work-dir>/ca.pem, then verified against",
    )
    .option('--allow-insecure-fallback', 'allow falling back from an encrypted address to a plaintext one')
    .option(
      '--no-standby-supervisor',
      "give each job a supervisor of its own, started cold, instead of the agent's one long-lived supervisor (every job then pays a Node start-up: ~0.15 s and ~60 ms of CPU)",
    )
    .option(
      '--disconnected-grace <duration>',
      'cut off from every control plane this long, kill the running jobs (the control plane has handled them as lost); default: they run until they end',
      positiveDurationMs('--disconnected-grace'),
    )
    .option(
      '--job-user <user>',
      "run jobs as this user (name or uid), so they cannot read the agent's credential or work dir; the agent must run as root",
    )
    .option(
      '--pids-limit <n>',
      'processes and threads one job may have at once (its cgroup pids limit), so a fork bomb stays inside its job',
      positiveWhole('--pids-limit'),
      DEFAULT_PIDS_LIMIT,
    )
    .option(
      '--cgroup-parent <path>',
      'the cgroup jobs are made under (a path in the cgroup v2 tree, or under each v1 hierarchy); default: detected, see `runmesh agents get` for what it uses',
    )
    .option(
      '--no-cgroups',
      'no cgroups even where the host has them (another system manages them): jobs have their process group only, without limits or usage',
    )
    .option('--trusted-keys <file>', 'a JWKS of Ed25519 keys: run only jobs signed by one of them (runmesh submit --sign-key)')
    .option(
      '--cache-max <size>',
      'the job cache (submit --cache) holds at most this much (10GB, 500MB, 2GiB); least recently used entries go first',
      cacheSize,
      DEFAULT_CACHE_MAX,
    )
    .option('--log-level <level>', 'trace|debug|info|warn|error', (v: string) => logLevel(v), process.env.RUNMESH_LOG_LEVEL ?? 'info')
    .option('--print-systemd-unit', 'print a hardened systemd unit that runs this command with these flags, and exit')
    .action(async (f: AgentFlags, command: Command) => {
      if (f.printSystemdUnit) {
        const unit = systemdUnit({
          command: 'agent',
          args: argsAfter(process.argv, 'agent'),
          stateDir: f.workDir,
          stateDirDefaulted: command.getOptionValueSource('workDir') === 'default',
          jobUser: f.jobUser,
          shutdownGraceMs: f.shutdownGrace,
        });
        process.stdout.write(unit);
        return;
      }
      keepRunningWhenOutputCloses();
      if (!f.joinToken) throw new UsageError('--join-token is required (or set RUNMESH_JOIN_TOKEN)');
      const join = parseJoinString(f.joinToken);
      const caFingerprint = pinOf(join.fingerprint, f.caFingerprint);
      const servers = f.server.length ? f.server : (process.env.RUNMESH_SERVER ?? DEFAULT_SERVER).split(',');
      const [{ Agent, loadTrustedKeys }, { createLogger }] = await Promise.all([import('../../agent/agent.js'), import('../logging.js')]); // see cli/program.ts
      const logger = createLogger(f.logLevel);
      const tracing = await (await import('../../transport/tracing/setup.js')).startTracing(process.env, 'runmesh-agent', logger);
      const agent = new Agent({
        servers,
        joinToken: join.token,
        name: f.name,
        labels: agentLabels(f.labels),
        capacity: { slots: f.slots, cpuMillis: f.cpu, memoryMb: f.memory },
        workDir: f.workDir,
        shutdownGraceMs: f.shutdownGrace,
        tls: f.tlsCa || f.tlsCert ? { ca: f.tlsCa, cert: f.tlsCert, key: f.tlsKey } : undefined,
        caFingerprint,
        allowInsecureFallback: !!f.allowInsecureFallback,
        standbySupervisor: f.standbySupervisor,
        disconnectedGraceMs: f.disconnectedGrace,
        jobUser: f.jobUser,
        pidsLimit: f.pidsLimit,
        cgroupParent: f.cgroupParent,
        cgroups: f.cgroups,
        trustedKeys: f.trustedKeys,
        cacheMaxBytes: f.cacheMax,
        logger,
        tracing,
      });
      // SIGHUP: the trusted keys (the file is read again even when its name did not change) and the log level change live.
      reloadOnHangup(command, logger, {
        live: ['trustedKeys'],
        prepare: (next) => {
          const file = next.trustedKeys as string | undefined;
          const keys = file ? loadTrustedKeys(file) : undefined;
          return () => {
            const from = agent.trustedKeyIds();
            agent.setTrustedKeys(keys);
            const to = agent.trustedKeyIds();
            if (!isDeepStrictEqual(from, to))
              logger.info({ component: 'reload', key: 'trusted-keys', from, to }, 'reloaded: trusted key ids');
          };
        },
      });
      const stopped = untilSignal(); // before it starts: a signal as it comes up drains it rather than killing it
      await agent.start();
      const outcome = await Promise.race([stopped, agent.fatal]);
      if (outcome instanceof Error) {
        await agent.close();
        await tracing.shutdown();
        if (isPinMismatch(outcome)) throw new CliError(`refusing the control plane: ${outcome.message}`);
        const details = (outcome as { details?: string }).details ?? outcome.message;
        throw new CliError(`the control plane refused this agent: ${details}`);
      }
      await agent.shutdown();
      await tracing.shutdown();
    });
  useConfigFile(agent);
}

/** The operator's labels: keys under runmesh.io/ are what the agent reports of itself (its executors). */
function agentLabels(items: string[]): Record<string, string> {
  const labels = parseLabels(items);
  const reserved = Object.keys(labels).find(isReservedLabel);
  if (reserved !== undefined)
    throw new UsageError(
      `--labels: "${reserved}" is reserved: keys under ${RESERVED_LABEL_PREFIX} are set by the agent from what its host offers`,
    );
  return labels;
}

/** --cache-max: a size with its unit. */
function cacheSize(text: string): number {
  try {
    return parseSize(text);
  } catch (err) {
    throw new UsageError(`--cache-max: ${(err as Error).message}`);
  }
}

/** A count of at least 1. */
const positiveWhole =
  (flag: string) =>
  (text: string): number => {
    const n = whole(flag)(text);
    if (n < 1) throw new UsageError(`${flag}: must be at least 1 (got "${text}")`);
    return n;
  };

/** The CA fingerprint to pin, from the join string or --ca-fingerprint (which must then agree); '' for none. */
function pinOf(fromJoinString: string, flag: string | undefined): string {
  const pins = [fromJoinString, flag ?? '']
    .filter((p) => p !== '')
    .map((p) => {
      try {
        return parseFingerprint(p);
      } catch (err) {
        throw new UsageError((err as Error).message);
      }
    });
  if (pins.length === 2 && pins[0] !== pins[1]) throw new UsageError('--ca-fingerprint and the join string pin different CAs');
  return pins[0] ?? '';
}
