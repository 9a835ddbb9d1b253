/**
 * A job's artifacts on the console: the listing of one attempt, and a file as
 * a download. Both go through the ArtifactService's own implementation with
 * the caller's principal, so its tenant and scope checks are the gRPC ones (a
 * job of another tenant is not found). A download is sent as an attachment of
 * opaque bytes, never rendered by the browser, at the pace the client reads;
 * the number of downloads open at once on this peer is bounded.
 */
import { status as Status } from '@grpc/grpc-js';
import type { ServerResponse } from 'node:http';
import { basename } from 'node:path';
import type { ArtifactFile, GetArtifactRequest, ListArtifactsRequest, ListArtifactsResponse } from '../../proto/gen/runmesh/v1/artifact.js';
import { ApiError, invalid } from '../api/status.js';
import { drained } from '../api/drain.js';
import type { Principal } from '../auth/index.js';
import { SAFE_HEADERS } from './http-io.js';
import type { RouteCall } from './routes.js';
import type { ArtifactsView } from './wire.js';

/** What the console needs of the ArtifactService (api/artifact-service.ts). */
export interface ArtifactReader {
  list(req: ListArtifactsRequest, who: Principal): Promise<ListArtifactsResponse>;
  read(req: GetArtifactRequest, who: Principal, signal: AbortSignal): Promise<{ file: ArtifactFile; body: AsyncIterable<Uint8Array> }>;
}

/** Downloads open at once on one peer's console; past it, 429. */
export const MAX_DOWNLOADS = 16;

export class ArtifactDownloads {
  private open = 0;

  constructor(private readonly artifacts: ArtifactReader) {}

  /** GET /api/jobs/:id/artifacts[?attempt=N]: the latest attempt that stored artifacts, or attempt N. */
  async list(c: RouteCall): Promise<ArtifactsView> {
    const attempt = attemptOf(c.query.get('attempt') ?? '0', 0);
    const res = await this.artifacts.list({ jobId: c.params.id!, attempt, fromNeed: '' }, c.who);
    return {
      attempt: res.attempt,
      files: res.files.map((f) => ({ path: f.path, size: String(f.size), sha256: f.sha256 })),
      error: res.error,
    };
  }

  /** GET /api/jobs/:id/artifacts/:attempt/:path: the file's bytes as an attachment. */
  async send(c: RouteCall): Promise<undefined> {
    if (this.open >= MAX_DOWNLOADS)
      throw new ApiError(Status.RESOURCE_EXHAUSTED, 'too many downloads open on this peer: try again shortly');
    const request: GetArtifactRequest = {
      jobId: c.params.id!,
      attempt: attemptOf(c.params.attempt!, 1),
      fromNeed: '',
      path: c.params.path!,
    };
    const abort = new AbortController();
    const gone = (): void => abort.abort(new Error('client went away'));
    c.res.once('close', gone);
    this.open++;
    try {
      const { file, body } = await this.artifacts.read(request, c.who, abort.signal);
      c.res.writeHead(200, {
        ...SAFE_HEADERS,
        'content-type': 'application/octet-stream',
        'content-disposition': attachment(basename(file.path)),
        'content-length': String(file.size),
        'cache-control': 'no-store',
      });
      await pipe(body, c.res, abort.signal);
      c.res.end();
    } catch (err) {
      if (abort.signal.aborted) return undefined; // the client went away: nobody to answer, nothing gone wrong here
      // Once the headers are out, a short body must not pass for the whole file: the connection is cut instead.
      if (c.res.headersSent) c.res.destroy();
      throw err;
    } finally {
      this.open--;
      c.res.off('close', gone);
    }
    return undefined;
  }
}

/** Writes `body` to `res`, waiting for the client to read whenever its buffer is full. */
async function pipe(body: AsyncIterable<Uint8Array>, res: ServerResponse, signal: AbortSignal): Promise<void> {
  for await (const chunk of body) {
    signal.throwIfAborted();
    if (!res.write(chunk)) await drained(res, signal);
  }
}

function attemptOf(text: string, min: number): number {
  const n = /^\d{1,10}$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isInteger(n) || n < min || n > 0xffff_ffff) throw invalid('attempt', `a whole number from ${min}, got ${text.slice(0, 20)}`);
  return n;
}

/**
 * `attachment; filename="..."; filename*=UTF-8''...` (RFC 6266): the quoted
 * name keeps printable ASCII but quotes and backslashes (a browser without
 * filename* reads it), the extended one is the exact name, percent-encoded.
 */
export function attachment(name: string): string {
  const ascii = name.replace(/[^\x20-\x7e]|["\\]/g, '_');
  const exact = encodeURIComponent(name).replace(/['()*]/g, (ch) => `%${ch.charCodeAt(0).toString(16).toUpperCase()}`);
  return `attachment; filename="${ascii}"; filename*=UTF-8''${exact}`;
}
