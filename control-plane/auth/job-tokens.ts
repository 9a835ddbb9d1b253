/**
 * Job tokens: each attempt's RUNMESH_JOB_TOKEN, `rmj_<job id>_<attempt>_<mac>`.
 * The prefix lets secret scanners find a leaked one. The mac is an
 * HMAC-SHA256 of `<job id>/<attempt>` under a key every peer derives from the
 * cluster's peer secret, so any peer mints the same token for an attempt and
 * checks one without anything stored per token (and the job record never
 * holds it).
 *
 * A token is good only while the job's stored record says its attempt is the
 * job's current one and still active (assigned or running), and never past
 * that attempt's assignment + timeout + cancel grace + JOB_TOKEN_GRACE_MS:
 * the deadline the supervisor enforces, plus room for its kill and for
 * clocks. The record is read from the store at every call, so the attempt's
 * end (its result stored, a cancel, a loss) revokes the token on every peer
 * at once. Its principal has role `job`, the job's tenant, and the job as its
 * scope (roles.ts `canSeeJob`).
 */
import { createHmac } from 'node:crypto';
import type { Principal } from './roles.js';
import { sameDigest } from '../secret.js';

export const JOB_TOKEN_PREFIX = 'rmj_';
/** How long past its attempt's deadline and cancel grace a token may still be used (clock skew, the supervisor's kill). */
export const JOB_TOKEN_GRACE_MS = 30_000;
const TOKEN = /^rmj_(j_[0-9a-z]{13}[0-9a-f]{8})_([1-9][0-9]{0,8})_([A-Za-z0-9_-]{43})$/;

/** What a token's check needs of its job's stored record. */
export interface AttemptFacts {
  tenant: string;
  /** The job's current attempt. */
  attempt: number;
  /** The current attempt is assigned or running (not ended, not yet re-queued). */
  active: boolean;
  /** When the current attempt was assigned (ms since the epoch). */
  assignedAt: number;
  timeoutSeconds: number;
  cancelGraceSeconds: number;
}

/** Reads a job's record from the store (not a watched copy: a revocation must hold on every peer at once). */
export type AttemptLookup = (jobId: string) => Promise<AttemptFacts | undefined>;

export class JobTokens {
  readonly #key: Buffer;

  /** `key`: 32 bytes, the same on every peer (PeerSecret.derive). */
  constructor(
    key: Buffer,
    private readonly lookup: AttemptLookup,
  ) {
    this.#key = key;
  }

  /** The token of attempt `attempt` of `jobId`; the same every time it is asked for. */
  mint(jobId: string, attempt: number): string {
    return `${JOB_TOKEN_PREFIX}${jobId}_${attempt}_${this.mac(jobId, attempt).toString('base64url')}`;
  }

  /** The principal a job token stands for, or why it stands for nobody; the reason names the job, never the token. */
  async verify(token: string, now = Date.now()): Promise<Principal | { refused: string }> {
    const m = TOKEN.exec(token);
    if (!m) return { refused: 'malformed job token' };
    const [jobId, attempt] = [m[1]!, Number(m[2])];
    if (!sameDigest(Buffer.from(m[3]!, 'base64url'), this.mac(jobId, attempt))) return { refused: 'job token refused' };
    const facts = await this.lookup(jobId);
    const ended = { refused: `job token of ${jobId} attempt ${attempt}: the attempt has ended` };
    if (!facts || facts.attempt !== attempt || !facts.active) return ended;
    const until = facts.assignedAt + (facts.timeoutSeconds + facts.cancelGraceSeconds) * 1000 + JOB_TOKEN_GRACE_MS;
    if (now > until) return { refused: `job token of ${jobId} attempt ${attempt}: past the attempt's deadline` };
    return { id: `job:${jobId}/${attempt}`, name: `job ${jobId}`, role: 'job', tenants: [facts.tenant], job: { id: jobId, attempt } };
  }

  private mac(jobId: string, attempt: number): Buffer {
    return createHmac('sha256', this.#key).update(`${jobId}/${attempt}`).digest();
  }
}
