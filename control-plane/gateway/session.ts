/**
 * One agent's stream, server side. Lifecycle: `hello` (first message must be
 * Hello, checked and answered with Welcome) → `active` → `closed`. Messages of
 * one job are handled in arrival order on a per-job chain; different jobs do
 * not wait for each other. Nothing an agent sends can crash the control
 * plane: bad messages end the stream with a status that says why.
 */
import { randomUUID } from 'node:crypto';
import { Metadata, status as Status, type ServerDuplexStream } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type {
  ConnectRequest,
  ConnectResponse,
  Hello,
  HeldAttempt,
  JobProgress,
  JobResult,
  LogChunk,
  ResumeAttempt,
} from '../../proto/gen/runmesh/v1/agent.js';
import { JobState } from '../../proto/gen/runmesh/v1/job.js';
import { ACCEPTS_HEADER, ARTIFACTS_FEATURE, JOB_PROGRESS_FEATURE, PROTOCOL_VERSION } from '../../proto/protocol.js';
import { activeAgent, finish, lost, started, undelivered } from '../jobs/lifecycle.js';
import { isLogGap, isLogWriteError } from '../logs/errors.js';
import { isUnreadableRecord } from '../jobs/errors.js';
import { progressProblem, recordProgress } from '../jobs/progress.js';
import type { JobRepo } from '../jobs/repo.js';
import { hashCredential, type Admission } from './auth.js';
import type { GatewayContext } from './context.js';
import type { AgentLink } from './registry.js';
import { ProgressCoalescer } from './progress.js';

type Phase = 'hello' | 'active' | 'closed';

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/** The audit trail's names for what happens on an agent's stream (as in `runmesh audit ls`). */
const AGENT_CONNECT = 'AgentService.Connect';
const AGENT_ENROL = 'AgentService.Enrol';
const AGENT_ROTATED = 'AgentService.RotateCredential';

export class AgentSession implements AgentLink {
  readonly sessionId = randomUUID();
  private phase: Phase = 'hello';
  private name = '';
  /** sha256 of the credential this session presented or was given; a revocation of it ends the session. */
  private hash = '';
  /** Set once the Welcome is sent: the agent can take a Rotate from then on. */
  private welcomed = false;
  /** A rotation being handed out: true while its store write is under way, then its hash until the agent confirms it. */
  private rotating: string | boolean = false;
  private log: Logger;
  private lastSeen = Date.now();
  private watchdog: NodeJS.Timeout;
  private readonly chains = new Map<string, Promise<void>>();
  private readonly acksDue = new Set<string>();
  /** Per attempt with a gap, the record asked for again, so a burst past the gap asks once. */
  private readonly resendAsked = new Map<string, number>();
  /** Progress reports, at most one store write per attempt per second (progress.ts). */
  private readonly progress = new ProgressCoalescer(
    (p) => new Promise((resolve) => this.onJob(p.jobId, () => this.storeProgress(p).finally(resolve))),
  );

  constructor(
    private readonly call: ServerDuplexStream<ConnectRequest, ConnectResponse>,
    private readonly ctx: GatewayContext,
  ) {
    this.log = ctx.logger.child({ session_id: this.sessionId });
    // Every eighth of the timeout: a silent agent is noticed at most that late.
    this.watchdog = setInterval(() => this.checkAlive(), Math.max(50, ctx.heartbeatTimeoutMs / 8));
    this.watchdog.unref();
    // Before any message: the agent sends JobProgress only to a control plane that names it here.
    const accepts = new Metadata();
    accepts.set(ACCEPTS_HEADER, [JOB_PROGRESS_FEATURE, ARTIFACTS_FEATURE].join(','));
    call.sendMetadata(accepts);
    call.on('data', (m: ConnectRequest) => this.onMessage(m));
    call.on('error', (err) => this.log.debug({ err }, 'agent stream error'));
    call.on('end', () => this.ended('agent closed the stream'));
    call.on('close', () => this.ended('stream closed'));
    call.on('cancelled', () => this.ended('stream cancelled'));
  }

  /** The agent's name once its Hello was read ('' before). */
  get agentName(): string {
    return this.name;
  }

  get credentialHash(): string {
    return this.hash;
  }

  send(msg: ConnectResponse): boolean {
    if (this.phase === 'closed') return false;
    this.call.write(msg);
    return true;
  }

  /** Read through a method: a session can close while its Hello is awaited. */
  private isClosed(): boolean {
    return this.phase === 'closed';
  }

  /** Ends the stream with an error status (or OK when `code` is omitted). */
  close(reason: string, code: Status = Status.UNAVAILABLE): void {
    if (this.phase === 'closed') return;
    const wasActive = this.phase === 'active';
    this.phase = 'closed';
    clearInterval(this.watchdog);
    this.progress.close();
    this.log.info({ reason }, 'agent session closed');
    try {
      this.call.emit('error', { code, details: reason });
    } catch (err) {
      this.log.debug({ err }, 'closing a broken stream');
    }
    if (wasActive) this.ctx.onDisconnect(this.name, this);
  }

  private ended(reason: string): void {
    if (this.phase === 'closed') return;
    const wasActive = this.phase === 'active';
    this.phase = 'closed';
    clearInterval(this.watchdog);
    this.progress.close();
    this.log.info({ reason }, 'agent disconnected');
    if (!this.call.destroyed) this.call.end();
    if (wasActive) this.ctx.onDisconnect(this.name, this);
  }

  private checkAlive(): void {
    if (Date.now() - this.lastSeen > this.ctx.heartbeatTimeoutMs) this.close('no heartbeat within the timeout', Status.DEADLINE_EXCEEDED);
  }

  private onMessage(m: ConnectRequest): void {
    this.lastSeen = Date.now();
    const msg = m.msg;
    if (this.phase === 'closed') return;
    if (this.phase === 'hello') {
      if (msg?.$case !== 'hello') return this.close('first message must be Hello', Status.FAILED_PRECONDITION);
      this.phase = 'active';
      void this.onHello(msg.value).catch((err: unknown) => {
        this.log.error({ err }, 'hello failed');
        this.close('could not register the agent', Status.INTERNAL);
      });
      return;
    }
    switch (msg?.$case) {
      case 'heartbeat':
        return this.ctx.registry.heartbeat(this.name, msg.value, new Date());
      case 'jobUpdate':
        return this.onJob(msg.value.jobId, () => this.onRunning(msg.value.jobId, msg.value.attempt, msg.value.state));
      case 'logChunk':
        return this.onJob(msg.value.jobId, () => this.onLog(msg.value));
      case 'jobResult':
        return this.onJob(msg.value.jobId, () => this.onResult(msg.value));
      case 'jobProgress':
        return this.onProgress(msg.value);
      case 'credentialSaved':
        return void this.onCredentialSaved(msg.value.credentialSha256);
      case 'hello':
        return this.close('Hello sent twice', Status.FAILED_PRECONDITION);
      default:
        return this.close('empty or unknown message', Status.INVALID_ARGUMENT);
    }
  }

  private refuse(hello: Hello): string | undefined {
    if (hello.protocolVersion !== PROTOCOL_VERSION)
      return `protocol version ${hello.protocolVersion} is not supported (server speaks ${PROTOCOL_VERSION})`;
    if (!NAME.test(hello.name)) return `hello.name: "${hello.name.slice(0, 64)}" is not a valid agent name`;
    return undefined;
  }

  private async onHello(hello: Hello): Promise<void> {
    const refusal = this.refuse(hello);
    if (refusal) return this.close(refusal, Status.INVALID_ARGUMENT);
    this.name = hello.name;
    this.log = this.log.child({ agent_id: hello.name });
    const admitted = await this.admit(hello);
    if (admitted === undefined || this.isClosed()) return;
    // The labels of the join token it enrolled with win over the agent's own.
    const agent: Hello = { ...hello, labels: { ...hello.labels, ...admitted.labels } };
    let reconciled: Awaited<ReturnType<AgentSession['reconcile']>>;
    try {
      reconciled = await this.reconcile(hello.held);
    } catch (err) {
      // Never read as "the job is gone": the agent keeps running what it holds and asks again.
      this.log.warn({ err, held: hello.held.length }, 'could not reconcile the attempts the agent holds');
      this.close('could not read the jobs of the attempts this agent holds (store unavailable); try again', Status.UNAVAILABLE);
      return;
    }
    const { resume, abandon, cancels } = reconciled;
    if (this.phase === 'closed') return;
    this.send({
      msg: {
        $case: 'welcome',
        value: {
          sessionId: this.sessionId,
          heartbeatIntervalMs: this.ctx.heartbeatIntervalMs,
          credential: admitted.credential,
          resume,
          abandon,
        },
      },
    });
    this.welcomed = true;
    this.ctx.onConnect(agent, this);
    for (const c of cancels) this.send({ msg: { $case: 'cancel', value: c } });
    this.log.info(
      {
        labels: agent.labels,
        capacity: hello.capacity,
        version: hello.version,
        containment: hello.containment,
        resumed: resume.length,
        abandoned: abandon.length,
      },
      'agent connected',
    );
    await this.rotateIfDue();
  }

  /**
   * Hands the agent a new credential if its current one is due for rotation
   * (gateway/rotation.ts). A confirmation whose store write failed is
   * written again instead. Never throws: a failed try is retried later.
   */
  async rotateIfDue(): Promise<void> {
    if (!this.welcomed || this.isClosed() || this.rotating !== false) return;
    const { rotation } = this.ctx;
    if (rotation.confirmedButPending(this.name, this.hash)) return this.completeRotation(this.hash);
    if (!rotation.due(this.name)) return;
    this.rotating = true;
    try {
      const r = await rotation.begin(this.name, this.hash);
      if (r === undefined || this.isClosed()) {
        this.rotating = false;
        return;
      }
      this.rotating = r.hash;
      this.send({ msg: { $case: 'rotate', value: { credential: r.credential, expiresAt: r.expiresAt.toISOString() } } });
      this.log.info({ expires_at: r.expiresAt.toISOString() }, 'rotating the agent credential');
    } catch (err) {
      this.rotating = false;
      this.log.warn({ err }, 'could not start rotating the agent credential; trying again later');
    }
  }

  /** The agent saved the credential of our Rotate: from now on this session presents it, and it alone is accepted. */
  private async onCredentialSaved(sha256: string): Promise<void> {
    if (typeof this.rotating !== 'string' || sha256 !== this.rotating) {
      this.log.warn('the agent confirmed a credential it was not sent: ignored');
      return;
    }
    // Before the old hash is dropped: its drop ends the streams still presenting it.
    this.hash = sha256;
    this.rotating = false;
    await this.completeRotation(sha256);
  }

  private async completeRotation(hash: string): Promise<void> {
    try {
      if (await this.ctx.rotation.complete(this.name, hash)) {
        this.log.info({ audit: true, event: 'agent_rotated' }, 'agent credential rotated');
        this.audited(AGENT_ROTATED, 'OK');
      }
    } catch (err) {
      this.log.warn({ err }, 'could not store the rotated agent credential; trying again later (both are accepted meanwhile)');
    }
  }

  /**
   * Authenticates the Hello and claims the agent's identity for this session.
   * Resolves with the credential to hand out ('' unless this Hello enrolled
   * the agent) and the labels its enrolment gives it, or undefined when the
   * stream was ended instead.
   */
  private async admit(hello: Hello): Promise<{ credential: string; labels: Record<string, string> } | undefined> {
    // Set before the store is read, so a revocation landing meanwhile still finds this session.
    if (hello.credential) this.hash = hashCredential(hello.credential);
    let admission: Admission;
    try {
      admission = await this.ctx.auth.check(hello.name, hello.joinToken, hello.credential);
    } catch (err) {
      this.log.warn({ err }, 'could not read the agent credential');
      this.close('could not check the agent credential (store unavailable); try again', Status.UNAVAILABLE);
      return undefined;
    }
    if (this.isClosed()) return undefined;
    if (admission.kind === 'refused') return this.refuseAudited(admission.reason, Status.UNAUTHENTICATED, admission.presented);
    const presented = admission.kind === 'enrol' ? 'join token' : 'credential';
    const busy = this.ctx.claim(hello.name, this);
    if (busy) return this.refuseAudited(busy, Status.ALREADY_EXISTS, presented);
    if (admission.kind === 'credential') {
      // The agent saved a rotation's credential but its confirmation was lost: presenting it confirms it.
      if (admission.pending) await this.completeRotation(admission.hash);
      return { credential: '', labels: admission.labels };
    }
    const enrolled = await this.ctx.auth.enrol(hello.name, hello.joinToken).catch((err: unknown) => {
      this.log.warn({ err }, 'could not store the agent credential');
      return null;
    });
    if (enrolled === null) {
      this.close('could not store the agent credential (store unavailable); try again', Status.UNAVAILABLE);
      return undefined;
    }
    if ('refused' in enrolled) return this.refuseAudited(enrolled.refused, Status.UNAUTHENTICATED, presented);
    this.hash = enrolled.hash;
    this.audited(AGENT_ENROL, 'OK');
    return { credential: enrolled.credential.reveal(), labels: enrolled.labels };
  }

  /** Ends the stream of a refused connection, with an audit entry (never the secrets, only which kind was presented). */
  private refuseAudited(reason: string, code: Status, presented: string): undefined {
    this.log.warn({ audit: true, event: 'agent_refused', remote: this.call.getPeer(), presented, reason }, 'agent connection refused');
    this.audited(AGENT_CONNECT, Status[code]);
    this.close(reason, code);
    return undefined;
  }

  /** Adds an entry about this agent to the stored audit trail. */
  private audited(method: string, result: string): void {
    this.ctx.audit.record({ actor: `agent:${this.name}`, method, target: this.name, from: this.call.getPeer(), result });
  }

  /**
   * Decides, from the store's truth, which held attempts the agent keeps and
   * which it drops. Rejects when the store cannot answer: a failed read is
   * never taken as a job that is gone (the agent would kill a healthy job).
   */
  private async reconcile(held: HeldAttempt[]) {
    const resume: ResumeAttempt[] = [];
    const abandon: HeldAttempt[] = [];
    const cancels: Array<{ jobId: string; attempt: number; graceSeconds: number; reason: string }> = [];
    const heldIds = new Set(held.map((h) => h.jobId));
    for (const h of held) {
      let v: Awaited<ReturnType<JobRepo['get']>>;
      try {
        v = await this.ctx.repo.get(h.jobId);
      } catch (err) {
        if (!isUnreadableRecord(err)) throw err;
        // Not the store failing but a record nobody can read: nothing can finish that attempt.
        this.log.warn({ err, job_id: h.jobId }, 'unreadable job record: the agent drops its attempt');
        abandon.push(h);
        continue;
      }
      const r = v?.record;
      if (!r || r.job.attempt !== h.attempt || activeAgent(r) !== this.name) {
        abandon.push(h);
        continue;
      }
      if (v) this.ctx.tracker.apply(v);
      const file = await this.ctx.logs.file(h.jobId, h.attempt);
      resume.push({ jobId: h.jobId, attempt: h.attempt, nextSeq: await file.durable() });
      if (r.cancel)
        cancels.push({ jobId: h.jobId, attempt: h.attempt, graceSeconds: r.job.spec.cancelGraceSeconds, reason: r.cancel.reason });
    }
    // Attempts assigned to this agent that it does not hold (it holds those still starting too): one
    // it never reported running never reached it (its Assign went down with the last stream), so it is
    // queued again without using a retry and without counting against the agent's health; one it was
    // running went with the host or the agent's work dir.
    for (const id of this.ctx.index.jobsOn(this.name)) {
      if (heldIds.has(id)) continue;
      const at = this.ctx.index.attemptOf(id);
      if (!at) continue;
      await this.ctx.writer.write(id, (r) => {
        const now = new Date();
        return (
          undelivered(r, at.attempt, `agent ${this.name} reconnected without the assignment: it never arrived`, now) ||
          lost(r, at.attempt, 'agent restarted without the attempt', now)
        );
      });
    }
    return { resume, abandon, cancels };
  }

  /** Serialises the handling of one job's messages; errors are logged, never thrown. */
  private onJob(jobId: string, work: () => Promise<void>): void {
    const prev = this.chains.get(jobId) ?? Promise.resolve();
    const next = prev.then(work).catch((err: unknown) => this.log.error({ err, job_id: jobId }, 'agent message failed'));
    this.chains.set(jobId, next);
    void next.then(() => {
      if (this.chains.get(jobId) === next) this.chains.delete(jobId);
    });
  }

  /** True when this agent holds the current active attempt of the job. */
  private owns(jobId: string, attempt: number): boolean {
    const v = this.ctx.tracker.get(jobId);
    return !!v && v.record.job.attempt === attempt && activeAgent(v.record) === this.name;
  }

  private async onRunning(jobId: string, attempt: number, state: JobState): Promise<void> {
    if (state !== JobState.JOB_STATE_RUNNING || !this.owns(jobId, attempt)) return;
    await this.ctx.writer.write(jobId, (r) => started(r, attempt, new Date()));
  }

  /** A report past the limits ends the stream; one of an attempt this agent does not hold is ignored, like JobUpdate. */
  private onProgress(p: JobProgress): void {
    const problem = progressProblem(p);
    if (problem) return this.close(problem, Status.INVALID_ARGUMENT);
    if (this.owns(p.jobId, p.attempt)) this.progress.offer(p);
  }

  private async storeProgress(p: JobProgress): Promise<void> {
    if (!this.owns(p.jobId, p.attempt)) return;
    await this.ctx.writer.write(p.jobId, (r) => activeAgent(r) === this.name && recordProgress(r, p, new Date()));
  }

  private async onLog(c: LogChunk): Promise<void> {
    if (!this.owns(c.jobId, c.attempt)) return;
    // The log disk is full: not taken and not acknowledged, the chunk stays in the agent's spool and comes again.
    if (this.ctx.logs.full) return;
    const file = await this.ctx.logs.file(c.jobId, c.attempt);
    const key = logKey(c.jobId, c.attempt);
    try {
      file.append(c.seq, c.stream, c.data);
    } catch (err) {
      if (!isLogGap(err)) throw err;
      if (this.resendAsked.get(key) !== err.expected) {
        this.resendAsked.set(key, err.expected);
        this.log.warn(
          { job_id: c.jobId, attempt: c.attempt, expected: err.expected, got: c.seq },
          'gap in the log stream, asking the agent to resend',
        );
        this.askResend(c.jobId, c.attempt, err.expected);
      }
      return;
    }
    this.resendAsked.delete(key);
    this.ackSoon(c.jobId, c.attempt);
  }

  private askResend(jobId: string, attempt: number, nextSeq: number): void {
    this.send({ msg: { $case: 'logAck', value: { jobId, attempt, nextSeq, resend: true } } });
  }

  /** Coalesces acknowledgements: one fsync and one LogAck for a burst of chunks. */
  private ackSoon(jobId: string, attempt: number): void {
    const key = logKey(jobId, attempt);
    if (this.acksDue.has(key)) return;
    this.acksDue.add(key);
    setImmediate(() => {
      this.acksDue.delete(key);
      void this.ctx.logs
        .file(jobId, attempt)
        .then((f) => f.durable())
        .then((nextSeq) => this.send({ msg: { $case: 'logAck', value: { jobId, attempt, nextSeq, resend: false } } }))
        .catch((err: unknown) => {
          // Records dropped by a failed write: the log store said why (once); the agent sends them again.
          if (!isLogWriteError(err)) this.log.error({ err, job_id: jobId }, 'log sync failed');
        });
    });
  }

  private async onResult(res: JobResult): Promise<void> {
    const ack = (): void => void this.send({ msg: { $case: 'resultAck', value: { jobId: res.jobId, attempt: res.attempt } } });
    if (!this.owns(res.jobId, res.attempt)) return ack(); // stale or zombie: fenced out, let the agent drop it
    const held = res.logRecords === 0 ? 0 : await (await this.ctx.logs.file(res.jobId, res.attempt)).durable();
    if (held < res.logRecords) {
      this.log.warn(
        { job_id: res.jobId, attempt: res.attempt, held, records: res.logRecords },
        'result counts more log records than we hold, asking the agent to resend',
      );
      this.askResend(res.jobId, res.attempt, held);
      return; // the agent re-sends the missing records, then the result
    }
    this.resendAsked.delete(logKey(res.jobId, res.attempt));
    // The second copy is made before the result is stored: once the agent has its ack it drops its spool.
    const holders = await this.ctx.replicateLog(res.jobId, res.attempt, res.logRecords);
    const outcome = {
      exitCode: res.exitCode,
      failure: res.failure,
      message: res.message,
      logRecords: res.logRecords,
      startedAt: res.startedAt,
      finishedAt: res.finishedAt,
      usage: res.usage,
    };
    // The last progress report still held goes into the same write.
    const progress = this.progress.take(res.jobId, res.attempt);
    const stored = await this.ctx.writer.write(res.jobId, (r) => {
      if (progress) recordProgress(r, progress, new Date());
      if (!finish(r, res.attempt, outcome, new Date())) return false;
      r.logPeers = { ...r.logPeers, [res.attempt]: holders };
      // Stored artifacts were recorded by their commit; an upload that failed says why here, and nothing of it is kept.
      const a = r.job.attempts.find((x) => x.number === res.attempt);
      if (a && res.artifactsError) a.artifacts = { files: 0, bytes: 0n, error: res.artifactsError.slice(0, 1024) };
      else if (a && res.artifactsUnmatched && !a.artifacts) a.artifacts = { files: 0, bytes: 0n, error: '' };
      return true;
    });
    if (!stored && progress && this.owns(res.jobId, res.attempt)) this.progress.offer(progress); // not stored: it waits for the next try
    if (stored || !this.owns(res.jobId, res.attempt)) {
      await this.ctx.logs.seal(res.jobId, res.attempt);
      ack();
    }
  }
}

/** An attempt's key in the per-attempt log bookkeeping (acks due, resends asked). */
function logKey(jobId: string, attempt: number): string {
  return `${jobId}/${attempt}`;
}
