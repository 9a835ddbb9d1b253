/**
 * The console API's routes, as one table: each names the authorization
 * table's method (control-plane/auth/table.ts) whose row decides who may call
 * it, so the console grants exactly what gRPC grants. A route whose method
 * changes something (table.ts `mutates`) needs the session's CSRF token and
 * is recorded in the audit log, once, whatever its result.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Principal } from '../auth/index.js';

export type HttpVerb = 'GET' | 'POST' | 'DELETE';

export interface RouteCall {
  req: IncomingMessage;
  res: ServerResponse;
  /** The path's `:name` parts, decoded. */
  params: Record<string, string>;
  query: URLSearchParams;
  who: Principal;
}

export interface ConsoleRoute {
  verb: HttpVerb;
  /** `/api/jobs/:id/cancel`: literal parts and `:name` parts (one path segment each). */
  path: string;
  /** The authorization table's method that decides who may call it ("JobService.Cancel"). */
  method: string;
  /** For the audit entry of a mutation: what it touched. */
  target?: (params: Record<string, string>) => string;
  /** Answers the call: returns the JSON body, or undefined when it answered itself (a stream). */
  handle(c: RouteCall): Promise<unknown>;
}

/** Every console API route and the table method it is authorized as; the authorization test walks this list. */
export const ROUTE_METHODS: ReadonlyArray<readonly [HttpVerb, string, string]> = [
  ['GET', '/api/overview', 'ClusterService.Status'],
  ['GET', '/api/agents', 'ClusterService.ListAgents'],
  ['POST', '/api/agents/:name/drain', 'ClusterService.Drain'],
  ['POST', '/api/agents/:name/cordon', 'ClusterService.Cordon'],
  ['POST', '/api/agents/:name/uncordon', 'ClusterService.Uncordon'],
  ['POST', '/api/agents/:name/revoke', 'ClusterService.RevokeAgent'],
  ['GET', '/api/jobs', 'JobService.List'],
  ['GET', '/api/jobs/:id', 'JobService.Get'],
  ['POST', '/api/jobs/:id/cancel', 'JobService.Cancel'],
  ['POST', '/api/jobs/:id/retry', 'JobService.Retry'],
  ['GET', '/api/jobs/:id/log', 'JobService.Logs'],
  ['GET', '/api/jobs/:id/artifacts', 'ArtifactService.ListArtifacts'],
  // :path is the artifact's path as one segment, URI-encoded ('/' as %2F).
  ['GET', '/api/jobs/:id/artifacts/:attempt/:path', 'ArtifactService.GetArtifact'],
  ['GET', '/api/events', 'JobService.Watch'],
];

/** The route `verb path` names, and its params; undefined when none does. */
export function match(
  routes: readonly ConsoleRoute[],
  verb: string,
  path: string,
): { route: ConsoleRoute; params: Record<string, string> } | 'wrong verb' | undefined {
  const parts = path.split('/');
  let wrongVerb = false;
  for (const route of routes) {
    const want = route.path.split('/');
    if (want.length !== parts.length) continue;
    const params: Record<string, string> = {};
    const ok = want.every((w, i) => {
      const got = parts[i] ?? '';
      if (!w.startsWith(':')) return w === got;
      if (got === '') return false;
      try {
        params[w.slice(1)] = decodeURIComponent(got);
        return true;
      } catch {
        return false;
      }
    });
    if (!ok) continue;
    if (route.verb === verb) return { route, params };
    wrongVerb = true;
  }
  return wrongVerb ? 'wrong verb' : undefined;
}
