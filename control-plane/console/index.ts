/**
 * control-plane/console/: the web console on the HTTP port. Its page and
 * bundle (built from web/ into dist/console), the sign-in that turns an API
 * token into a session cookie (sessions.ts, caller.ts), and a JSON API whose
 * routes (routes.ts) call the gRPC services' own implementations behind the
 * same gate and authorization table, plus server-sent events fed by one
 * subscription to the cluster (hub.ts) and a job's log as it grows
 * (log-stream.ts). docs/architecture.md "The console" says why it is built so.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { Metadata } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { status as Status } from '@grpc/grpc-js';
import type { ClusterServiceImpl } from '../api/cluster-service.js';
import type { JobServiceImpl } from '../api/job-service.js';
import { ApiError, toServiceError } from '../api/status.js';
import { allowed, isUnauthenticated, METHOD_VERBS, mutates, RateLimiter, type Gate, type Principal, type Rate } from '../auth/index.js';
import { repoRoot } from '../paths.js';
import type { Store } from '../store/store.js';
import { ArtifactDownloads, type ArtifactReader } from './artifacts.js';
import { Assets } from './assets.js';
import { Callers, cookieName, cookieOf, CSRF_HEADER, sessionCookie } from './caller.js';
import { Hub, MAX_STREAMS } from './hub.js';
import { clientAddress, readJson, sendError, sendJson } from './http-io.js';
import { cancelJob, getJob, listJobs, parseFilter, retryJob } from './jobs-api.js';
import { streamLog, type LogSource } from './log-stream.js';
import { overview } from './overview.js';
import { match, ROUTE_METHODS, type ConsoleRoute, type RouteCall } from './routes.js';
import { csrfMatches, SessionStore, type SessionLimits } from './sessions.js';
import { openEventStream } from './sse.js';
import { agentView } from './views.js';
import type { SessionInfo, WaitExplanation } from './wire.js';

export { ROUTE_METHODS } from './routes.js';
export type * from './wire.js';

export interface ConsoleDeps {
  gate: Gate;
  jobs: Pick<JobServiceImpl, 'get' | 'list' | 'cancel' | 'retry'>;
  cluster: Pick<ClusterServiceImpl, 'status' | 'agents' | 'drain' | 'cordon' | 'revoke'>;
  /** A job's artifacts, listed and read as ArtifactService does (its tenant and scope checks). */
  artifacts: ArtifactReader;
  /** Where a job's log is read from, as JobService.Logs reads it. */
  logSource: LogSource;
  logger: Logger;
  /** The HTTP port serves TLS: the session cookie is Secure. */
  tls: boolean;
  /** The router's circuit breaker state of an agent ('closed' when it has none). */
  breaker(agent: string): string;
  /** Why a queued job waits (routing's own matching), when this peer can tell. */
  explainWait?(jobId: string): WaitExplanation | undefined;
  /** Where the built page is; default dist/console in the package. */
  assetsDir?: string;
  /** Console requests per client address (sign-ins included). */
  rate?: Rate;
  /** The cluster's store: sessions are kept there, so every peer knows them (sessions.ts). */
  store: Store;
  /** Session lifetimes and caps; default DEFAULT_SESSION_LIMITS. */
  sessionLimits?: SessionLimits;
}

/** Per client address: 50 requests a second, bursts of 200 (a page load is a handful). */
export const CONSOLE_RATE: Rate = { perSecond: 50, burst: 200 };

/** How often expired console sessions are deleted from the store. */
const SESSION_SWEEP_MS = 10 * 60_000;

export class Console {
  private readonly sessions: SessionStore;
  private readonly sweeper: NodeJS.Timeout;
  private readonly callers: Callers;
  private readonly hub: Hub;
  private readonly assets: Assets;
  private readonly limiter: RateLimiter;
  private readonly routes: ConsoleRoute[];
  private readonly downloads: ArtifactDownloads;

  constructor(private readonly d: ConsoleDeps) {
    this.sessions = new SessionStore(d.store, d.logger, d.sessionLimits);
    this.callers = new Callers(d.gate, this.sessions, d.tls);
    // Every peer sweeps (a delete compares the revision it read, so two sweeps never undo a sign-in or a use).
    this.sweeper = setInterval(() => {
      this.sessions.sweep().catch((err: unknown) => d.logger.warn({ err }, 'console session sweep failed: tried again later'));
    }, SESSION_SWEEP_MS).unref();
    this.hub = new Hub({ tracker: d.logSource.tracker, agents: () => this.agents() });
    this.assets = new Assets(d.assetsDir ?? join(repoRoot(), 'dist', 'console'));
    this.limiter = new RateLimiter(d.rate ?? CONSOLE_RATE);
    this.downloads = new ArtifactDownloads(d.artifacts);
    this.routes = this.buildRoutes();
  }

  /** The HTTP server's route for `/` and everything under it that no other route takes. */
  readonly route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://console');
    const wait = this.limiter.take(clientAddress(req));
    if (wait > 0) {
      res.writeHead(429, { 'retry-after': String(Math.ceil(wait / 1000)), 'content-type': 'text/plain' }).end('too many requests\n');
      return;
    }
    try {
      if (url.pathname === '/api/session') return await this.session(req, res);
      if (url.pathname.startsWith('/api/')) return await this.api(url, req, res);
      if (!(await this.assets.serve(url.pathname, req, res))) sendJson(res, 404, { error: 'not found' });
    } catch (err) {
      sendError(res, err, this.d.logger);
    }
  };

  close(): void {
    clearInterval(this.sweeper);
    this.hub.close();
  }

  private agents() {
    return this.d.cluster.agents().map((a) => agentView(a, this.d.breaker(a.name)));
  }

  /** GET: who is signed in. POST {token}: sign in. DELETE: sign out. */
  private async session(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method === 'POST') {
      const body = await readJson(req);
      const token = typeof body.token === 'string' ? body.token.trim() : '';
      if (!token || token.length > 4096) throw new ApiError(Status.INVALID_ARGUMENT, 'token: missing');
      const md = new Metadata();
      md.set('authorization', `Bearer ${token}`);
      // The gate counts a bad token against the address, as for any call, and records it.
      const who = await this.d.gate.identify('Console.SignIn', md, clientAddress(req));
      if (who.role === 'agent' || who.role === 'job') throw new ApiError(Status.PERMISSION_DENIED, `a ${who.role} token cannot sign in`);
      const s = await this.sessions.create(token, who.id);
      // A session is a new credential for the token's holder: the trail says who opened one, and from where.
      this.d.gate.audit.record({ actor: who.id, method: 'Console.SignIn', target: '', from: clientAddress(req), result: 'OK' });
      this.d.logger.info({ audit: true, token_id: who.id, role: who.role, from: clientAddress(req) }, 'console sign-in');
      return sendJson(res, 200, info(who, s.csrf), { 'set-cookie': sessionCookie(this.d.tls, s.id) });
    }
    if (req.method === 'DELETE') {
      // Signing out needs the CSRF token too (else any page could sign a user out); the cookie is cleared regardless.
      const id = cookieOf(req, cookieName(this.d.tls));
      const s = id ? await this.sessions.get(id) : undefined;
      if (s && csrfMatches(s, header(req, CSRF_HEADER))) await this.sessions.delete(s.id);
      return sendJson(res, 200, {}, { 'set-cookie': sessionCookie(this.d.tls, undefined) });
    }
    if (req.method !== 'GET') return sendJson(res, 405, { error: 'method not allowed' });
    const caller = await this.callers.identify('Console.Session', req);
    sendJson(res, 200, info(caller.who, caller.session?.csrf));
  }

  private async api(url: URL, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const found = match(this.routes, req.method ?? 'GET', url.pathname);
    if (found === undefined) return sendJson(res, 404, { error: 'not found' });
    if (found === 'wrong verb') return sendJson(res, 405, { error: 'method not allowed' });
    const { route, params } = found;
    const mutation = mutates(route.method);
    let actor = 'anonymous';
    let from = clientAddress(req);
    const audit = (result: string): void => {
      if (mutation)
        this.d.gate.audit.record({ actor, method: route.method, target: (route.target?.(params) ?? '').slice(0, 128), from, result });
    };
    try {
      const caller = await this.callers.check(route.method, req, mutation);
      actor = caller.who.id;
      from = caller.from;
      const body = await route.handle({ req, res, params, query: url.searchParams, who: caller.who });
      audit('OK');
      if (body !== undefined) sendJson(res, 200, body);
    } catch (err) {
      // A failed authentication was recorded by the gate, with the reason it knows.
      if (!isUnauthenticated(err)) audit(Status[toServiceError(err, this.d.logger).code ?? Status.UNKNOWN] ?? 'UNKNOWN');
      throw err;
    }
  }

  private buildRoutes(): ConsoleRoute[] {
    const { jobs, cluster } = this.d;
    const handlers: Record<string, Omit<ConsoleRoute, 'verb' | 'path' | 'method'>> = {
      'GET /api/overview': { handle: async (c) => overview({ cluster, tracker: this.d.logSource.tracker, hub: this.hub }, c.who) },
      'GET /api/agents': { handle: async () => this.agents() },
      'POST /api/agents/:name/drain': { target: byName, handle: async (c) => cluster.drain(c.params.name!) },
      'POST /api/agents/:name/cordon': { target: byName, handle: async (c) => cluster.cordon(c.params.name!, true) },
      'POST /api/agents/:name/uncordon': { target: byName, handle: async (c) => cluster.cordon(c.params.name!, false) },
      'POST /api/agents/:name/revoke': { target: byName, handle: async (c) => cluster.revoke(c.params.name!) },
      'GET /api/jobs': { handle: async (c) => listJobs(jobs, parseFilter(c.query), c.who) },
      'GET /api/jobs/:id': {
        handle: async (c) => {
          const detail = await getJob(jobs, c.params.id!, c.who);
          const waiting = detail.summary.state === 'queued' ? this.d.explainWait?.(detail.summary.id) : undefined;
          if (waiting) detail.waiting = { ...waiting, reason: waiting.reason || detail.summary.waitingReason };
          return detail;
        },
      },
      'POST /api/jobs/:id/cancel': { target: byId, handle: async (c) => cancelJob(jobs, c.params.id!, c.who) },
      'POST /api/jobs/:id/retry': { target: byId, handle: async (c) => retryJob(jobs, c.params.id!, c.who) },
      'GET /api/jobs/:id/log': {
        handle: async (c) => {
          await jobs.get({ id: c.params.id! }, c.who); // its tenant is the caller's, or it is not found
          await streamLog(this.d.logSource, c.params.id!, c.query, c.req, c.res, this.d.logger);
          return undefined;
        },
      },
      'GET /api/jobs/:id/artifacts': { handle: (c) => this.downloads.list(c) },
      'GET /api/jobs/:id/artifacts/:attempt/:path': { handle: (c) => this.downloads.send(c) },
      'GET /api/events': { handle: async (c) => this.events(c) },
    };
    return ROUTE_METHODS.map(([verb, path, method]) => {
      const h = handlers[`${verb} ${path}`];
      if (!h) throw new Error(`console route ${verb} ${path} has no handler`);
      return { verb, path, method, ...h };
    });
  }

  private async events(c: RouteCall): Promise<undefined> {
    if (this.hub.streams >= MAX_STREAMS) throw new ApiError(Status.RESOURCE_EXHAUSTED, 'too many open event streams on this peer');
    const stream = openEventStream(c.req, c.res);
    this.hub.add(stream, c.who, { jobs: true, agents: allowed(c.who.role, 'ClusterService.ListAgents') });
    return undefined;
  }
}

const byName = (p: Record<string, string>): string => p.name ?? '';
const byId = (p: Record<string, string>): string => p.id ?? '';

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return typeof v === 'string' ? v : undefined;
}

function info(who: Principal, csrf: string | undefined): SessionInfo {
  return {
    name: who.name || who.id,
    role: who.role,
    tenants: who.tenants === 'all' ? 'all' : [...who.tenants],
    allowed: Object.keys(METHOD_VERBS).filter((m) => allowed(who.role, m)),
    ...(csrf ? { csrf } : {}),
  };
}
