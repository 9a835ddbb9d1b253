/**
 * Where attempts' logs are across the mesh, and their second copies. A sealed
 * log accepted here is copied to one other live peer (ranked by rendezvous
 * hashing on the attempt), so losing one peer loses no finished log; a log
 * this peer does not hold is read from a peer that does, going on from the
 * last record read when one holder fails.
 */
import type { Logger } from 'pino';
import type { ReadLogRequest } from '../../proto/gen/runmesh/v1/peer.js';
import { agentSeed, fnv1a, rendezvous } from '../../routing/hash.js';
import { logHolders, type JobRecord } from '../jobs/record.js';
import type { LogRecord, LogRead, LogStore } from '../logs/log-store.js';
import { CopySourceError, LogUnreachableError } from './errors.js';
import type { Mesh } from './mesh.js';
import type { PeerClients } from './peer-clients.js';

/** Peers asked in turn to keep a sealed log's second copy. */
const COPY_TRIES = 2;
/** A copy's deadline: this, plus 1 ms per record, up to the max. */
const COPY_TIMEOUT_MS = 5_000;
const COPY_TIMEOUT_MAX_MS = 60_000;
/** A copy syncs what it has written after about this many bytes. */
const COPY_SYNC_BYTES = 4 << 20;

export class LogCopies {
  constructor(
    private readonly mesh: Mesh,
    private readonly clients: PeerClients,
    /** This peer's log blob directory (copies of other peers' sealed logs land here). */
    private readonly logs: LogStore,
    private readonly log: Logger,
  ) {}

  /**
   * Keeps a second copy of a sealed log held here on another live peer, the
   * one ranked first for this attempt (the next on failure). Resolves with
   * the peers holding it, this one first; with no other peer (or none
   * answering, which is logged as a warning) that is this one alone.
   */
  async replicate(jobId: string, attempt: number, records: number): Promise<string[]> {
    const self = this.mesh.peerId;
    if (records === 0) return [self];
    const key = fnv1a(`${jobId}/${attempt}`);
    const ranked = this.mesh
      .others()
      .map((p) => ({ p, w: rendezvous(key, agentSeed(p.id)) }))
      .sort((a, b) => b.w - a.w)
      .slice(0, COPY_TRIES);
    const timeoutMs = Math.min(COPY_TIMEOUT_MAX_MS, COPY_TIMEOUT_MS + records);
    for (const { p } of ranked) {
      try {
        await this.clients.copyLog(p.peerAddress, { jobId, attempt, sourcePeer: self, records }, timeoutMs);
        return [self, p.id];
      } catch (err) {
        this.log.warn({ err, job_id: jobId, attempt, peer_id: p.id }, 'copying a sealed log to a peer failed');
      }
    }
    // A mesh of one has nowhere to copy to; that is how it runs, not a warning.
    if (ranked.length > 0) this.log.warn({ job_id: jobId, attempt, peers_tried: ranked.length }, 'sealed log kept on this peer only');
    return [self];
  }

  /**
   * Another peer's `replicate`, served here (PeerService.CopyLog): fetches the
   * records of the sealed log `sourcePeer` holds that are not held here yet,
   * makes them durable and seals the copy; resolves with how many are held.
   */
  async copyFrom(jobId: string, attempt: number, sourcePeer: string, records: number): Promise<number> {
    const address = sourcePeer === this.mesh.peerId ? undefined : this.mesh.peer(sourcePeer)?.peerAddress;
    if (!address) throw new CopySourceError(`source_peer: ${sourcePeer.slice(0, 64)} is not another live peer`);
    const file = await this.logs.file(jobId, attempt);
    let unsynced = 0;
    if (file.count < records) {
      for await (const r of this.clients.readLog(address, { jobId, attempt, fromSeq: file.count, follow: false })) {
        file.append(r.seq, r.stream, r.data);
        // Bounded memory for a long log: what is queued is written and synced as it goes.
        if ((unsynced += r.data.byteLength) > COPY_SYNC_BYTES) {
          await file.durable();
          unsynced = 0;
        }
        if (file.count >= records) break;
      }
    }
    const held = await file.durable();
    if (held < records) throw new CopySourceError(`records: ${sourcePeer} holds ${held} of the ${records} records`);
    await this.logs.seal(jobId, attempt);
    return held;
  }

  /** True when the attempt's log is written or kept here, or nowhere known (then here is as good as any). */
  isHere(record: JobRecord, attempt: number): boolean {
    const peers = this.holders(record, attempt);
    return peers.length === 0 || peers.includes(this.mesh.peerId);
  }

  /**
   * Reads an attempt's log from the peers that have it (see `isHere`). A log
   * none of whose holders is live fails with LogUnreachableError, the holders
   * named, rather than reading as empty.
   */
  read(record: JobRecord, read: LogRead, signal: AbortSignal): AsyncIterable<LogRecord> {
    const holders = this.holders(record, read.attempt);
    const live = holders.flatMap((id) => this.mesh.peer(id)?.peerAddress ?? []);
    if (live.length === 0) {
      throw new LogUnreachableError(
        `the log of job ${record.job.id} attempt ${read.attempt} is held by ${holders.join(', ') || 'no peer'}, none of them live now`,
      );
    }
    return this.readFrom(live, read, signal);
  }

  /**
   * Where an attempt's log is: the peer holding its agent now (running), or
   * the peers holding its sealed copies (finished); none when no peer does.
   */
  private holders(record: JobRecord, attempt: number): string[] {
    const last = record.job.attempts.at(-1);
    const running = record.job.attempt === attempt && !last?.finishedAt;
    if (!running) return logHolders(record, attempt);
    const peer = this.mesh.directory.get(last?.agent ?? '')?.peerId;
    return peer ? [peer] : [];
  }

  /** Reads from the first holder that answers, going on from the last record yielded when one fails. */
  private async *readFrom(addresses: string[], request: ReadLogRequest, signal: AbortSignal): AsyncGenerator<LogRecord> {
    let fromSeq = request.fromSeq;
    for (let i = 0; ; i++) {
      try {
        for await (const r of this.clients.readLog(addresses[i]!, { ...request, fromSeq }, signal)) {
          fromSeq = r.seq + 1;
          yield r;
        }
        return;
      } catch (err) {
        if (signal.aborted) throw err;
        if (i + 1 >= addresses.length) {
          throw new LogUnreachableError(
            `the log of job ${request.jobId} attempt ${request.attempt} could not be read from ${addresses.join(', ')} (${(err as Error).message}); retry`,
          );
        }
        this.log.warn(
          { err, job_id: request.jobId, attempt: request.attempt, address: addresses[i] },
          'reading a log copy failed, trying the next',
        );
      }
    }
  }
}
