/**
 * Where attempts' artifacts are across the mesh, and their second copies, as
 * log-copies.ts does for sealed logs: artifacts stored here are copied to one
 * other live peer (ranked by rendezvous hashing on the attempt) before the
 * upload's commit answers, so losing one peer loses none; artifacts this
 * peer does not hold are read from a holder that does, going on from the
 * last byte read when one holder fails.
 */
import type { Logger } from 'pino';
import type { ArtifactFile } from '../../proto/gen/runmesh/v1/artifact.js';
import { agentSeed, fnv1a, rendezvous } from '../../routing/hash.js';
import type { ArtifactKey, ArtifactStorage } from '../artifacts/storage.js';
import { CopySourceError, LogUnreachableError, PeerCallError } from './errors.js';
import type { Mesh } from './mesh.js';
import type { PeerClients } from './peer-clients.js';

/** Peers asked in turn to keep the second copy. */
const COPY_TRIES = 2;
/** A copy's deadline: this, plus a second per 10 MB, up to the max. */
const COPY_TIMEOUT_MS = 10_000;
const COPY_BYTES_PER_SECOND = 10_000_000;
const COPY_TIMEOUT_MAX_MS = 30 * 60_000;
/** A copy is a copy: the receiving peer takes what the first one accepted, whatever its own limits. */
const NO_LIMITS = { fileBytes: Infinity, jobBytes: Infinity, files: Infinity };

export class ArtifactCopies {
  constructor(
    private readonly mesh: Mesh,
    private readonly clients: PeerClients,
    private readonly storage: ArtifactStorage,
    private readonly log: Logger,
  ) {}

  /**
   * Keeps a second copy of artifacts stored here on another live peer.
   * Resolves with the peers holding them, this one first; with no other peer
   * (or none answering, logged as a warning), this one alone.
   */
  async replicate(key: ArtifactKey, files: readonly ArtifactFile[]): Promise<string[]> {
    const self = this.mesh.peerId;
    const h = fnv1a(`artifacts/${key.jobId}/${key.attempt}`);
    const ranked = this.mesh
      .others()
      .map((p) => ({ p, w: rendezvous(h, agentSeed(p.id)) }))
      .sort((a, b) => b.w - a.w)
      .slice(0, COPY_TRIES);
    const bytes = files.reduce((n, f) => n + Number(f.size), 0);
    const timeoutMs = Math.min(COPY_TIMEOUT_MAX_MS, COPY_TIMEOUT_MS + (bytes / COPY_BYTES_PER_SECOND) * 1000);
    for (const { p } of ranked) {
      try {
        await this.clients.copyArtifacts(p.peerAddress, { ...key, sourcePeer: self }, timeoutMs);
        return [self, p.id];
      } catch (err) {
        this.log.warn({ err, job_id: key.jobId, attempt: key.attempt, peer_id: p.id }, 'copying artifacts to a peer failed');
      }
    }
    if (ranked.length > 0)
      this.log.warn({ job_id: key.jobId, attempt: key.attempt, peers_tried: ranked.length }, 'artifacts kept on this peer only');
    return [self];
  }

  /**
   * Another peer's `replicate`, served here (PeerService.CopyArtifacts):
   * fetches what is not held here yet of the artifacts `sourcePeer` stored,
   * each file checked against its sha256, and stores them; resolves with the
   * number of files held.
   */
  async copyFrom(key: ArtifactKey, sourcePeer: string): Promise<number> {
    const address = sourcePeer === this.mesh.peerId ? undefined : this.mesh.peer(sourcePeer)?.peerAddress;
    if (!address) throw new CopySourceError(`source_peer: ${sourcePeer.slice(0, 64)} is not another live peer`);
    const files = await this.clients.listHeldArtifacts(address, key);
    const state = await this.storage.begin(key, files, NO_LIMITS);
    if (!state.committed) {
      for (const [i, f] of files.entries()) {
        const held = state.held[i] ?? 0;
        if (held < Number(f.size)) {
          await this.storage.append(key, f.path, held, this.clients.readArtifact(address, { ...key, path: f.path, offset: BigInt(held) }));
        }
      }
    }
    return (await this.storage.commit(key)).length;
  }

  /** The attempt's stored files, from here or the first holder that answers; undefined when no holder has any. */
  async list(key: ArtifactKey, holders: readonly string[]): Promise<ArtifactFile[] | undefined> {
    if (holders.includes(this.mesh.peerId)) {
      const here = await this.storage.list(key);
      if (here) return here;
    }
    const live = this.live(key, holders);
    for (const [i, address] of live.entries()) {
      try {
        return await this.clients.listHeldArtifacts(address, key);
      } catch (err) {
        if (i + 1 >= live.length) throw unreachable(key, live, err);
        this.log.warn({ err, job_id: key.jobId, attempt: key.attempt, address }, 'listing artifacts on a peer failed, trying the next');
      }
    }
    return undefined;
  }

  /** A stored file's bytes from the start: from here when held here, else from the holders in turn, going on where one failed. */
  async *read(key: ArtifactKey, holders: readonly string[], path: string, signal: AbortSignal): AsyncGenerator<Uint8Array> {
    if (holders.includes(this.mesh.peerId) && (await this.storage.list(key))) {
      yield* this.storage.read(key, path, 0, signal);
      return;
    }
    const live = this.live(key, holders);
    let offset = 0;
    for (let i = 0; ; i++) {
      try {
        for await (const chunk of this.clients.readArtifact(live[i]!, { ...key, path, offset: BigInt(offset) }, signal)) {
          offset += chunk.byteLength;
          yield chunk;
        }
        return;
      } catch (err) {
        if (signal.aborted) throw err;
        if (i + 1 >= live.length) throw unreachable(key, live, err);
        this.log.warn(
          { err, job_id: key.jobId, attempt: key.attempt, address: live[i] },
          'reading an artifact copy failed, trying the next',
        );
      }
    }
  }

  /** The addresses of the live holders other than this peer; none live is an error naming them, never "no artifacts". */
  private live(key: ArtifactKey, holders: readonly string[]): string[] {
    const live = holders.filter((id) => id !== this.mesh.peerId).flatMap((id) => this.mesh.peer(id)?.peerAddress ?? []);
    if (live.length === 0)
      throw new LogUnreachableError(
        `the artifacts of job ${key.jobId} attempt ${key.attempt} are held by ${holders.join(', ') || 'no peer'}, none of them live now`,
      );
    return live;
  }
}

function unreachable(key: ArtifactKey, addresses: readonly string[], err: unknown): Error {
  const why = err instanceof PeerCallError ? ((err.cause as Error | undefined)?.message ?? err.message) : (err as Error).message;
  return new LogUnreachableError(
    `the artifacts of job ${key.jobId} attempt ${key.attempt} could not be read from ${addresses.join(', ')} (${why}); retry`,
    {
      cause: err,
    },
  );
}
