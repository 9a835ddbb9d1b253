/**
 * The agent: holds one stream to the control plane (reconnecting with
 * jittered backoff, falling back down its address list), runs what it is
 * assigned through the executor, and on restart finds its attempts on disk
 * and reattaches to them. On SIGTERM it drains: no new work, running jobs
 * finish (up to the grace), the rest are handed back, then it exits.
 */
import { createHash } from 'node:crypto';
import { Metadata, status } from '@grpc/grpc-js';
import { hostname, loadavg, availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Assign, ConnectRequest, ConnectResponse, Welcome } from '../proto/gen/runmesh/v1/agent.js';
import { FailureCategory, QosClass } from '../proto/gen/runmesh/v1/job.js';
import { AGENT_NAME_HEADER, PROTOCOL_VERSION } from '../proto/protocol.js';
import {
  Backoff,
  delay,
  FallbackDialer,
  isDowngradeRefused,
  isPinMismatch,
  isRefusedCode,
  SESSION_BUSY_CODE,
  SESSION_BUSY_RETRY_MS,
  statusCode,
  type BackoffOptions,
} from '../transport/index.js';
import { sweepDeadPrivateDirs } from '../transport/unix-socket.js';
import {
  createExecutor,
  InvalidAttemptSpecError,
  isInvalidAttemptSpecError,
  type AttemptHandle,
  type AttemptSpec,
  type Executor,
  type ExitStatus,
  type ExecutorDescription,
} from './executor/index.js';
import { executorLabels, executorName } from '../proto/executor-labels.js';
import { CutOffWatch } from './cut-off.js';
import { JobCache, type CacheRef, type CacheRestore } from './cache/cache.js';
import { AttemptNotes } from './attempt-notes.js';
import { identityEnv, serverEnvOf } from './job-identity.js';
import { trustedKeysOf, untrusted } from '../proto/job-signature.js';
import { readFileSync } from 'node:fs';
import type { KeyObject } from 'node:crypto';
import { DiskWatch, isDiskFull } from '../proto/disk-space.js';
import { resolveAgentOptions, type AgentInput, type AgentOptions } from './options.js';
import { attemptKey, AttemptStream, type AfterExit } from './session/attempt.js';
import { ArtifactPlans, planOf, uploadArtifacts, type ArtifactPlan, type UploadLinks } from './artifacts/index.js';
import { loadMasks, matcherFor, maskText, saveMasks, secretValuesOf, sweepMasks, dropMasks } from './masking/index.js';
import { runConnection, type ConnectionHost } from './session/connection.js';
import { readCredential, saveCredential } from './session/credential.js';
import type { Link } from './session/link.js';
import { VERSION } from '../proto/version.js';
import { traceEnv, type TraceContext } from '../transport/tracing/carrier.js';
import { endAttemptSpan, traceAttempt } from './attempt-trace.js';

/** What an attempt's Assign said of its caches (JobSpec.tenant, JobSpec.caches). */
interface CacheNote {
  tenant: string;
  caches: CacheRef[];
}

/** Waits between reconnects: 100 ms doubling to 5 s, half jitter; the shortest again after a good connection. */
const RECONNECT: BackoffOptions = { baseMs: 100, capMs: 5_000 };
/** Attempts remembered as seen, so a re-sent Assign of one already started or finished is ignored. */
const SEEN_ATTEMPTS = 10_000;
/** Endings after which an attempt's artifacts are uploaded: the job's own, whatever its exit code (a failed test's report is wanted). */
const UPLOADS_AFTER: ReadonlySet<ExitStatus['failure']> = new Set(['none', 'exit_code', 'timeout', 'oom']);

export class Agent implements ConnectionHost {
  readonly options: AgentOptions;
  private readonly log: Logger;
  private readonly executor: Executor;
  /** How attempts are contained here and which executors this host offers: said once at start, and in every Hello. */
  private readonly description: ExecutorDescription;
  /** The operator's labels plus one per executor offered (proto/executor-labels.ts). */
  private readonly labels: Record<string, string>;
  /** RUNMESH_SERVER (and RUNMESH_TLS_CA) for jobs, beside their job token (job-identity.ts). */
  private readonly serverEnv: Record<string, string>;
  /** `--trusted-keys`: the keys a job must be signed by to run here; undefined runs unsigned jobs too. Replaced by SIGHUP. */
  private trusted: ReadonlyMap<string, KeyObject> | undefined;
  private readonly attempts = new Map<string, AttemptStream>();
  /** Every attempt assigned to this process, oldest first (bounded by SEEN_ATTEMPTS). */
  private readonly seen = new Set<string>();
  /**
   * Attempts whose executor.start is under way, by key; `abandoned` once the
   * control plane gave one up meanwhile. They are held (in every Hello) as
   * much as the started ones: a reconnect in that window must not read as
   * "the agent does not have it", which the control plane takes for lost.
   */
  private readonly starting = new Map<string, { jobId: string; attempt: number; abandoned: boolean }>();
  private readonly stop = new AbortController();
  private readonly backoff = new Backoff(RECONNECT);
  private readonly dialer: FallbackDialer;
  /** Kills the running attempts once the agent has been cut off from every control plane past the grace. */
  private readonly cutOff: CutOffWatch;
  private draining = false;
  /** The work dir's disk: while it is full the agent is unhealthy (in its heartbeat) and takes no work. */
  private readonly disk: DiskWatch;
  /** Workspace paths kept between jobs (`--cache KEY:PATH`), under the work dir. */
  private readonly cache: JobCache;
  /** Each attempt's artifact globs, beside it from before it starts (a restarted agent uploads those of the attempts it recovers). */
  private readonly plans: ArtifactPlans;
  /** Each running attempt's tenant and caches, kept beside it so that one recovered after a restart saves its caches too. */
  private readonly cacheNotes: AttemptNotes<CacheNote>;
  /** Attempts whose artifacts are still to upload: their workspaces stay, a full disk or not. */
  private readonly artifactsPending = new Set<string>();
  /** Uploads waiting for a connection (the next Welcome). */
  private readonly linkWaiters = new Set<(link: Link) => void>();
  private readonly uploadLinks: UploadLinks = { live: (signal) => this.liveLink(signal), metadata: () => this.uploadMetadata() };
  /** This agent's own credential ('' until the control plane enrols it); read from the work dir at start. */
  private credential = '';
  /** The connection that got the latest Welcome, while it lasts. */
  private link: Link | undefined;
  private loop: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  /** Rejects when the control plane refuses this agent for good (bad token, bad name). */
  readonly fatal: Promise<Error>;
  private setFatal!: (err: Error) => void;

  constructor(input: AgentInput) {
    this.options = resolveAgentOptions(input);
    this.log = this.options.logger.child({ agent_id: this.options.name });
    this.disk = new DiskWatch({ dir: this.options.workDir, what: 'work dir', log: this.log });
    this.disk.onChange((full) => this.onDiskChange(full));
    this.executor = createExecutor({
      workDir: this.options.workDir,
      logger: this.log,
      standby: this.options.standbySupervisor,
      onDiskFull: (err) => this.disk.noteError(err),
      jobUser: this.options.jobUser || undefined,
      pidsLimit: this.options.pidsLimit,
      cgroupParent: this.options.cgroupParent || undefined,
      cgroups: this.options.cgroups,
    });
    this.cache = new JobCache(join(this.options.workDir, 'cache'), this.options.cacheMaxBytes, this.log);
    this.plans = new ArtifactPlans(this.options.workDir);
    this.cacheNotes = new AttemptNotes(this.options.workDir, 'caches');
    this.description = this.executor.describe();
    this.labels = { ...this.options.labels, ...executorLabels(this.description.executors) };
    this.serverEnv = serverEnvOf(this.options);
    this.trusted = this.options.trustedKeys ? loadTrustedKeys(this.options.trustedKeys) : undefined;
    this.dialer = new FallbackDialer(this.options.servers, {
      tls: this.options.tls,
      pin: this.options.caFingerprint ? { fingerprint: this.options.caFingerprint, file: join(this.options.workDir, 'ca.pem') } : undefined,
      logger: this.log,
      allowDowngrade: this.options.allowInsecureFallback,
    });
    this.fatal = new Promise((resolve) => (this.setFatal = resolve));
    this.cutOff = new CutOffWatch(this.options.disconnectedGraceMs, this.log, (ms) => this.killCutOff(ms));
  }

  /** The keys jobs must be signed by from the next Assign on (SIGHUP reloads --trusted-keys); undefined runs unsigned jobs too. */
  setTrustedKeys(keys: ReadonlyMap<string, KeyObject> | undefined): void {
    this.trusted = keys;
  }

  /** The key ids jobs must be signed by; empty when unsigned jobs run too. */
  trustedKeyIds(): string[] {
    return [...(this.trusted?.keys() ?? [])];
  }

  /** Reattaches attempts left on disk, then connects (in the background). */
  async start(): Promise<void> {
    // The WebSocket bridge's socket directories of agents that died without removing them (kill -9, a signal).
    const swept = await sweepDeadPrivateDirs();
    if (swept.length > 0) this.log.info({ dirs: swept }, 'removed socket directories left by dead processes');
    this.credential = readCredential(this.options.workDir);
    this.sayContainment();
    await this.disk.start(); // a disk full before we start: unhealthy from the first heartbeat
    await this.cache.load();
    for (const handle of await this.executor.recover()) {
      const log = this.attemptLog(handle.jobId, handle.attempt);
      const masks = matcherFor(loadMasks(this.options.workDir, attemptKey(handle)));
      const { tenant, caches } = this.recoveredCaches(handle, log);
      this.track(new AttemptStream(handle, log, masks, this.afterExit(handle, log, tenant, caches, this.recoveredPlan(handle, log))));
    }
    sweepMasks(this.options.workDir, new Set(this.attempts.keys()));
    this.plans.sweep(new Set(this.attempts.keys()));
    this.cacheNotes.sweep(new Set(this.attempts.keys()));
    if (this.attempts.size > 0) this.log.info({ attempts: this.attempts.size }, 'recovered attempts from disk');
    this.cutOff.disconnected();
    this.loop = this.connectLoop();
  }

  /** Once, at start: a host without cgroups cannot hold a job's descendants or its limits, and the operator should know. */
  private sayContainment(): void {
    const { containment, executors } = this.description;
    const fields = { containment, executors, job_user: this.options.jobUser || undefined, pids_limit: this.options.pidsLimit };
    if (containment.startsWith('process group'))
      this.log.warn(fields, 'jobs are contained by their process group only: no cgroup, so no limits and no hold on detached processes');
    else this.log.info(fields, 'job containment');
  }

  private attemptLog(jobId: string, attempt: number): Logger {
    return this.log.child({ job_id: jobId, attempt });
  }

  private track(s: AttemptStream): void {
    this.attempts.set(s.key, s);
    s.handle.exited().then(
      (st) => st.failure === 'disk_full' && this.disk.noteFull(st.message),
      () => undefined, // the stream logs it
    );
    void s.done.then(() => {
      dropMasks(this.options.workDir, s.key);
      this.plans.drop(s.key);
      this.cacheNotes.drop(s.key);
      this.artifactsPending.delete(s.key);
      if (this.attempts.get(s.key) === s) this.attempts.delete(s.key);
    });
  }

  private async connectLoop(): Promise<void> {
    while (!this.stop.signal.aborted) {
      let waitMs: number | undefined;
      try {
        const d = await this.dialer.next(this.stop.signal);
        let welcomed = false;
        let failed = false;
        try {
          await runConnection(d, this, this.log, this.stop.signal, () => (welcomed = true));
        } catch (err) {
          failed = true;
          throw err;
        } finally {
          // A connection that got as far as Welcome was a good one, however it ended: the next one starts
          // from the shortest backoff, on the same address, unless that peer dropped us or went silent (a
          // stall past its lease): then on another, before the mesh takes us for lost.
          if (welcomed) {
            this.backoff.reset();
            if (failed && !this.stop.signal.aborted) this.dialer.demote(d.address);
            else this.dialer.markGood(d.address);
          }
          await d.close();
        }
      } catch (err) {
        if (this.stop.signal.aborted) break;
        // Reconnecting cannot help once the control plane refused this agent (transport/retry.ts): the operator must fix something.
        const code = statusCode(err);
        if (isPinMismatch(err)) {
          this.log.error({ err: (err as Error).message }, 'server does not hold the pinned CA: refusing to connect');
          this.setFatal(err as Error);
          break;
        }
        if (code !== undefined && isRefusedCode(code)) {
          this.log.error({ err }, 'control plane refused this agent');
          if (code === (status.UNAUTHENTICATED as number) && this.credential) await this.stopDisowned();
          this.setFatal(err as Error);
          break;
        }
        // Our previous session (or one on a peer not yet known dead) still holds our name: ask again soon.
        if (code === SESSION_BUSY_CODE) {
          this.log.info({ err: { message: (err as Error).message, code } }, 'a previous session still holds this agent: retrying');
          waitMs = SESSION_BUSY_RETRY_MS * (0.5 + Math.random() / 2);
        }
        // The encrypted address may only be down for now: keep trying it, loudly, never the plaintext one.
        else if (isDowngradeRefused(err)) this.log.error({ err: (err as Error).message }, 'refusing to fall back to plaintext');
        else this.log.warn({ err: { message: (err as Error).message, code } }, 'connection lost');
      }
      await delay(waitMs ?? this.backoff.next(), this.stop.signal);
    }
  }

  /**
   * Our credential was refused (revoked or expired): the control plane has
   * handled our attempts as lost and may have run them elsewhere, so none of
   * them may keep running on this host. Kills each and drops its spool.
   */
  private async stopDisowned(): Promise<void> {
    if (this.attempts.size === 0) return;
    this.log.warn({ attempts: this.attempts.size }, 'credential refused: stopping every attempt on this host');
    await Promise.all(
      [...this.attempts.values()].map((s) => s.abandon().catch((err: unknown) => this.log.error({ err }, 'could not stop an attempt'))),
    );
  }

  hello(): ConnectRequest {
    const held = [
      ...[...this.attempts.values()].map((s) => ({ jobId: s.handle.jobId, attempt: s.handle.attempt })),
      ...[...this.starting.values()].map(({ jobId, attempt }) => ({ jobId, attempt })),
    ];
    const o = this.options;
    return {
      msg: {
        $case: 'hello',
        value: {
          name: o.name,
          // The join token only enrols: once the agent has a credential, that alone is presented.
          joinToken: this.credential ? '' : o.joinToken,
          credential: this.credential,
          labels: this.labels,
          capacity: o.capacity,
          version: VERSION,
          protocolVersion: PROTOCOL_VERSION,
          held,
          hostname: hostname(),
          containment: this.description.containment,
        },
      },
    };
  }

  heartbeat(): ConnectRequest {
    const load = loadavg()[0] ?? 0;
    const cache = this.cache.stats();
    return {
      msg: {
        $case: 'heartbeat',
        value: {
          draining: this.draining,
          unhealthy: this.disk.reason,
          load: load / availableParallelism(),
          cacheBytes: BigInt(cache.bytes),
          cacheEntries: cache.entries,
          cacheHits: cache.hits,
          cacheMisses: cache.misses,
        },
      },
    };
  }

  onWelcome(w: Welcome, link: Link): void {
    this.log.info({ session_id: w.sessionId, resume: w.resume.length, abandon: w.abandon.length }, 'connected');
    if (w.credential && w.credential !== this.credential) {
      try {
        saveCredential(this.options.workDir, w.credential);
        this.log.info('enrolled: credential saved in the work dir');
      } catch (err) {
        // This process goes on with it; a restart before it is saved must enrol again (revoke, then a join token).
        if (!this.disk.noteError(err)) throw err;
        this.log.error({ err }, 'enrolled, but the credential could not be saved in the work dir');
      }
      this.credential = w.credential;
    }
    this.link = link;
    this.cutOff.connected();
    for (const wake of this.linkWaiters) wake(link);
    this.linkWaiters.clear();
    link.signal.addEventListener(
      'abort',
      () => {
        if (this.link !== link) return;
        this.link = undefined;
        this.cutOff.disconnected();
      },
      { once: true },
    );
    link.send(this.heartbeat());
    for (const r of w.resume) this.attempts.get(attemptKey(r))?.attach(link, r.nextSeq);
    for (const a of w.abandon) {
      const key = attemptKey(a);
      const starting = this.starting.get(key);
      if (starting)
        starting.abandoned = true; // dropped once started (onAssign)
      else void this.attempts.get(key)?.abandon();
    }
    const answered = new Set([...w.resume, ...w.abandon].map(attemptKey));
    // Started after our Hello was sent (its Assign came on the connection before): the
    // control plane has not heard of it here. Report it; if it was given up meanwhile,
    // the control plane acknowledges and ignores the result, and we drop it.
    for (const s of this.attempts.values()) if (!answered.has(s.key)) s.attach(link, 0);
  }

  onAssign(a: Assign, link: Link): void {
    const key = attemptKey(a);
    // A duplicate Assign of the same attempt (the control plane re-sends one it has no news of) is a no-op.
    if (this.attempts.has(key) || this.seen.has(key)) return;
    this.seen.add(key);
    if (this.seen.size > SEEN_ATTEMPTS) this.seen.delete(this.seen.values().next().value!);
    const log = this.attemptLog(a.jobId, a.attempt);
    const span = traceAttempt(this.options.tracing, a, this.options.name);
    if (this.disk.full) {
      // Sent before our heartbeat said so: nothing ran, so it goes back to the queue without using a retry.
      log.warn({ reason: this.disk.reason }, 'unhealthy: handing the assignment back');
      span.end('handed back', `agent unhealthy (${this.disk.reason})`);
      link.send(notRun(a, FailureCategory.FAILURE_CATEGORY_PREEMPTED, `agent unhealthy (${this.disk.reason}): handed back`));
      return;
    }
    // The values to mask are on disk before the job can print one, for an agent restarted mid-attempt.
    const secrets = secretValuesOf(a);
    const masks = matcherFor(secrets);
    // Before anything of the job touches this host: a control plane or store that was broken into cannot make us run it.
    const refusal = this.trusted && (a.spec ? untrusted(a.spec, this.trusted) : 'the assignment has no spec');
    if (refusal) {
      log.warn({ reason: refusal }, 'refusing an untrusted job');
      span.end('untrusted', refusal);
      link.send(notRun(a, FailureCategory.FAILURE_CATEGORY_UNTRUSTED, refusal));
      return;
    }
    const starting = { jobId: a.jobId, attempt: a.attempt, abandoned: false };
    this.starting.set(key, starting);
    const tenant = a.spec?.tenant ?? '';
    const caches = a.spec?.caches ?? [];
    const plan = planOf(a.spec, a.secretFiles);
    let restore: CacheRestore[] = [];
    const started = Promise.resolve().then(() => {
      saveMasks(this.options.workDir, key, secrets);
      this.plans.save(key, plan);
      if (caches.length > 0) this.cacheNotes.save(key, { tenant, caches });
      const spec = attemptSpecOf(a, this.description, this.serverEnv, span.context);
      restore = this.cache.checkout(tenant, caches); // pinned until the attempt is done with
      return this.executor.start({ ...spec, restore });
    });
    started.then(
      (handle) => {
        this.starting.delete(key);
        if (caches.length > 0) {
          handle.exited().then(
            () => this.cache.release(tenant, caches),
            () => this.cache.release(tenant, caches),
          );
        }
        handle.exited().then(
          (st) => endAttemptSpan(span, st),
          (err: unknown) => span.end('unknown', (err as Error).message),
        );
        const s = new AttemptStream(handle, log, masks, this.afterExit(handle, log, tenant, caches, plan));
        this.track(s);
        if (starting.abandoned) {
          log.info('abandoned by the control plane while it started: dropping it');
          void s.abandon();
          return;
        }
        if (this.draining) s.handBack = true;
        if (this.cutOff.cutOff) this.kill(s, 'cut off from every control plane past --disconnected-grace');
        // The connection the Assign came on may have dropped while the job started:
        // report on the one we have now, or on the next one's Welcome.
        const on = link.signal.aborted ? this.link : link;
        if (on) s.attach(on, 0);
        log.info('attempt started');
      },
      (err: unknown) => {
        this.starting.delete(key);
        if (restore.length > 0) this.cache.release(tenant, caches);
        log.error({ err }, 'could not start attempt');
        span.end('could not start', maskText(masks, String((err as Error).message)));
        this.plans.drop(key);
        this.cacheNotes.drop(key);
        if (starting.abandoned) return void dropMasks(this.options.workDir, key);
        // A spec no host could run is the job's fault; anything else is this host's.
        const failure = isInvalidAttemptSpecError(err)
          ? FailureCategory.FAILURE_CATEGORY_NOT_RUNNABLE
          : isDiskFull(err)
            ? FailureCategory.FAILURE_CATEGORY_DISK_FULL
            : FailureCategory.FAILURE_CATEGORY_COULD_NOT_START;
        dropMasks(this.options.workDir, key);
        // On the connection we have now: the one the Assign came on may be gone (a reconnect held this attempt).
        (link.signal.aborted ? this.link : link)?.send(notRun(a, failure, maskText(masks, String((err as Error).message))));
      },
    );
  }

  /**
   * What runs once an attempt has exited, before its result goes out: its
   * caches are saved (after exit 0), then its artifacts uploaded (after the
   * job's own ending, not after a cancel, a hand-back or a loss). The result
   * waits for both; an upload that failed is in it, and fails a job that
   * succeeded unless its artifacts were optional.
   */
  private afterExit(
    handle: AttemptHandle,
    log: Logger,
    tenant: string,
    caches: readonly CacheRef[],
    plan: ArtifactPlan | string | undefined,
  ): ((st: ExitStatus, signal: AbortSignal) => Promise<AfterExit | undefined>) | undefined {
    if (caches.length === 0 && plan === undefined) return undefined;
    const key = attemptKey(handle);
    if (plan !== undefined) this.artifactsPending.add(key);
    return async (st, signal) => {
      if (caches.length > 0) await this.saveCaches(st, tenant, caches, handle);
      try {
        if (plan === undefined || !UPLOADS_AFTER.has(st.failure)) return undefined;
        if (typeof plan === 'string') return { artifactsError: plan, artifactsUnmatched: false, failsJob: true };
        const outcome = await uploadArtifacts({
          jobId: handle.jobId,
          attempt: handle.attempt,
          workspace: join(handle.dir, 'work'),
          plan,
          links: this.uploadLinks,
          log,
          signal: AbortSignal.any([signal, this.stop.signal]),
        });
        return { artifactsError: outcome.error, artifactsUnmatched: outcome.unmatched, failsJob: !plan.optional };
      } finally {
        this.artifactsPending.delete(key);
      }
    };
  }

  /**
   * The caches of an attempt found on disk at start, so that one that exits 0
   * after the restart saves them as it would have; an unreadable note is
   * logged, and its caches are not saved (the job's result stands).
   */
  private recoveredCaches(handle: AttemptHandle, log: Logger): CacheNote {
    try {
      const note = this.cacheNotes.load(attemptKey(handle));
      if (note === undefined) return { tenant: '', caches: [] };
      if (typeof note.tenant !== 'string' || !Array.isArray(note.caches)) throw new Error('not a cache note this agent wrote');
      return { tenant: note.tenant, caches: note.caches.filter((c) => typeof c.key === 'string' && typeof c.path === 'string') };
    } catch (err) {
      log.error({ err }, 'could not read the caches of a recovered attempt: they will not be saved');
      return { tenant: '', caches: [] };
    }
  }

  /** The artifact plan of an attempt found on disk at start; an unreadable one is the attempt's artifacts error. */
  private recoveredPlan(handle: AttemptHandle, log: Logger): ArtifactPlan | string | undefined {
    try {
      return this.plans.load(attemptKey(handle));
    } catch (err) {
      log.error({ err }, 'could not read the artifact plan of a recovered attempt');
      return `the agent restarted and could not read the attempt's artifact plan: ${(err as Error).message}`;
    }
  }

  /** The connection that got the latest Welcome, now or once the next one does. */
  private liveLink(signal: AbortSignal): Promise<Link> {
    if (this.link && !this.link.signal.aborted) return Promise.resolve(this.link);
    return new Promise((resolve, reject) => {
      const wake = (link: Link): void => {
        signal.removeEventListener('abort', stop);
        resolve(link);
      };
      const stop = (): void => {
        this.linkWaiters.delete(wake);
        reject(signal.reason as Error);
      };
      if (signal.aborted) return stop();
      this.linkWaiters.add(wake);
      signal.addEventListener('abort', stop, { once: true });
    });
  }

  /** The agent's own identity for the calls beside its stream (artifact uploads): its name and credential. */
  private uploadMetadata(): Metadata {
    const md = new Metadata();
    md.set(AGENT_NAME_HEADER, this.options.name);
    md.set('authorization', `Bearer ${this.credential}`);
    return md;
  }

  /**
   * After a run that exited 0, before its result goes out (so a job that
   * follows finds the cache): its cache paths are saved. A save that fails
   * is logged; the job's result stands.
   */
  private async saveCaches(st: ExitStatus, tenant: string, caches: readonly CacheRef[], handle: AttemptHandle): Promise<void> {
    if (st.failure !== 'none' || st.exitCode !== 0) return;
    try {
      await this.cache.save(tenant, caches, join(handle.dir, 'work'));
      this.link?.send(this.heartbeat()); // the control plane hears of the new entry now, not a heartbeat later
    } catch (err) {
      if (!this.disk.noteError(err)) this.attemptLog(handle.jobId, handle.attempt).warn({ err }, 'could not save a cache');
    }
  }

  /**
   * No control plane has heard from us for the grace: each has handled our
   * attempts as lost (or will, when one comes back), so they would run on for
   * nobody. Kills them; each is reported lost, or abandoned, on reconnect.
   */
  private killCutOff(cutOffMs: number): void {
    const running = [...this.attempts.values()].filter((s) => !s.exited);
    const reason = `cut off from every control plane for ${Math.round(cutOffMs / 1000)}s (--disconnected-grace): killed`;
    if (running.length > 0)
      this.log.warn({ attempts: running.length, cut_off_ms: cutOffMs }, 'cut off past the disconnected grace: killing running attempts');
    for (const s of running) this.kill(s, reason);
  }

  private kill(s: AttemptStream, reason: string): void {
    s.lostReason = reason;
    void s.handle.cancel(5, reason).catch((err: unknown) => this.log.error({ err }, 'could not stop an attempt'));
  }

  /**
   * The work dir's disk filled or has space again: the control plane hears
   * of it at once, in a heartbeat. While full, exited attempts lose their
   * workspaces (their spools stay until the control plane has them).
   */
  private onDiskChange(full: boolean): void {
    if (this.link) this.link.send(this.heartbeat());
    if (!full) return;
    for (const s of this.attempts.values())
      if (s.exited && !this.artifactsPending.has(s.key))
        void s.handle.dropWorkspace().catch((err: unknown) => this.log.warn({ err }, 'could not drop a workspace'));
  }

  onMessage(m: ConnectResponse, link: Link): void {
    const msg = m.msg;
    switch (msg?.$case) {
      case 'cancel':
        void this.attempts.get(attemptKey(msg.value))?.handle.cancel(msg.value.graceSeconds, msg.value.reason);
        return;
      case 'logAck':
        return this.attempts.get(attemptKey(msg.value))?.onLogAck(msg.value.nextSeq, msg.value.resend);
      case 'resultAck':
        void this.attempts.get(attemptKey(msg.value))?.onResultAck();
        return;
      case 'drain':
        this.log.info({ reason: msg.value.reason }, 'draining on request');
        this.draining = true;
        return;
      case 'rotate':
        return this.onRotate(msg.value.credential, link);
      default:
        return;
    }
  }

  /**
   * Saves the credential of a Rotate in place of ours, then confirms it; the
   * control plane accepts both until the confirmation arrives, so a crash at
   * any point leaves a credential that works. A failed save is not confirmed:
   * the control plane tries again later.
   */
  private onRotate(credential: string, link: Link): void {
    try {
      saveCredential(this.options.workDir, credential);
    } catch (err) {
      this.log.error({ err }, 'could not save the rotated credential: keeping the current one');
      return;
    }
    this.credential = credential;
    link.send({ msg: { $case: 'credentialSaved', value: { credentialSha256: createHash('sha256').update(credential).digest('hex') } } });
    this.log.info('credential rotated: the new one is saved in the work dir');
  }

  /**
   * Drains: no new work, running attempts finish for up to `graceMs`, the rest
   * are cancelled and handed back (re-queued without using up a retry). Idempotent.
   */
  shutdown(graceMs = this.options.shutdownGraceMs): Promise<void> {
    return (this.closing ??= this.drainAndStop(graceMs));
  }

  private async drainAndStop(graceMs: number): Promise<void> {
    this.draining = true;
    this.log.info({ running: this.attempts.size, grace_ms: graceMs }, 'shutting down: draining');
    const all = (): Promise<unknown> => Promise.all([...this.attempts.values()].map((s) => s.done));
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(), graceMs);
    await Promise.race([all(), new Promise((r) => deadline.signal.addEventListener('abort', r, { once: true }))]);
    clearTimeout(timer);
    if (this.attempts.size > 0) {
      this.log.warn({ attempts: this.attempts.size }, 'grace over: handing running attempts back');
      for (const s of this.attempts.values()) {
        s.handBack = true;
        void s.handle.cancel(5, 'agent shutting down');
      }
      await Promise.race([all(), delay(15_000, new AbortController().signal)]);
    }
    await this.close();
  }

  /** Stops at once: ends the connection; running jobs keep running and are found on restart. */
  async close(): Promise<void> {
    this.stop.abort();
    this.cutOff.close();
    this.disk.close();
    await this.loop;
    this.executor.close();
  }
}

/** The Ed25519 keys of a JWKS file; a file without one is refused (the agent would refuse every job). */
export function loadTrustedKeys(file: string): ReadonlyMap<string, KeyObject> {
  const keys = trustedKeysOf(JSON.parse(readFileSync(file, 'utf8')) as { keys?: unknown[] });
  if (keys.size === 0)
    throw new Error(`--trusted-keys ${file}: no Ed25519 public key in it (a JWKS: {"keys": [{"kty": "OKP", "crv": "Ed25519", ...}]})`);
  return keys;
}

/** The result of an attempt that never ran. */
function notRun(a: Assign, failure: FailureCategory, message: string): ConnectRequest {
  const value = {
    jobId: a.jobId,
    attempt: a.attempt,
    exitCode: -1,
    failure,
    message,
    logRecords: 0,
    startedAt: undefined,
    finishedAt: undefined,
    usage: undefined,
    artifactsError: '',
    artifactsUnmatched: false,
  };
  return { msg: { $case: 'jobResult', value } };
}

/**
 * What the executor runs for an Assign. The control plane stores every spec
 * resolved (defaults applied once, at submit) and always sends its deadline,
 * so nothing is defaulted here: an Assign without them is refused, and the
 * attempt is reported as one that could not start. An executor this host
 * does not offer is the host's failure, not the job's: it was placed here by
 * a label this agent advertised, and may run on another agent.
 */
function attemptSpecOf(
  a: Assign,
  host: ExecutorDescription,
  serverEnv: Readonly<Record<string, string>>,
  trace: TraceContext | undefined,
): AttemptSpec {
  const { spec } = a;
  if (!spec) throw new InvalidAttemptSpecError('assign.spec', 'missing');
  const deadline = a.deadline ? Date.parse(a.deadline) : NaN;
  if (!Number.isFinite(deadline)) throw new InvalidAttemptSpecError('assign.deadline', `missing or unreadable (${a.deadline ?? 'none'})`);
  const executor = executorName(spec.executor);
  if (!host.executors.includes(executor)) throw new Error(`this agent does not offer the ${executor} executor (${host.containment})`);
  return {
    jobId: a.jobId,
    attempt: a.attempt,
    argv: spec.argv,
    script: spec.script,
    env: { ...spec.env, ...traceEnv(trace), ...a.secretEnv, ...identityEnv(a.jobToken, serverEnv) },
    files: a.secretFiles.map((f) => ({ path: f.path, content: f.content })),
    deadline,
    graceSeconds: spec.cancelGraceSeconds,
    executor,
    limits: {
      memoryBytes: (spec.resources?.memoryMb ?? 0) * 1024 * 1024,
      cpuMillis: spec.resources?.cpuMillis ?? 0,
      cpuWeight: CPU_WEIGHT[spec.qos] ?? 100,
      pids: 0,
    },
    network: !spec.noNetwork,
  };
}

/** Contended CPU goes to critical work first: cgroup v2 weights (100 is the default), batch yields tenfold to standard. */
const CPU_WEIGHT: Partial<Record<QosClass, number>> = {
  [QosClass.QOS_CLASS_CRITICAL]: 1000,
  [QosClass.QOS_CLASS_STANDARD]: 100,
  [QosClass.QOS_CLASS_BATCH]: 10,
};
