/**
 * Who is calling a console route, and whether it may: the session cookie (or
 * a bearer token, for scripts) becomes a principal through the same gate as
 * every gRPC call, the authorization table decides by the route's method
 * name, and a mutation sent with a session cookie must carry the session's
 * CSRF token and, when the browser names one, an Origin of this server.
 */
import { Metadata } from '@grpc/grpc-js';
import type { IncomingMessage } from 'node:http';
import { PermissionDeniedError, UnauthenticatedError, type Gate, type Principal } from '../auth/index.js';
import { clientAddress } from './http-io.js';
import { csrfMatches, type Session, type SessionStore } from './sessions.js';

/** The session cookie's name; `__Host-` (Secure, path /, no domain) when served over TLS. */
export const cookieName = (tls: boolean): string => (tls ? '__Host-runmesh_session' : 'runmesh_session');
/** The header every mutation made with a session must carry its CSRF token in. */
export const CSRF_HEADER = 'x-runmesh-csrf';

export interface Caller {
  who: Principal;
  /** Absent for a bearer-token caller. */
  session: Session | undefined;
  from: string;
}

export function cookieOf(req: IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** `Set-Cookie` for a new session, or (no id) for signing out. */
export function sessionCookie(tls: boolean, id: string | undefined): string {
  const attrs = ['Path=/', 'HttpOnly', 'SameSite=Strict', ...(tls ? ['Secure'] : [])];
  return id ? [`${cookieName(tls)}=${id}`, ...attrs].join('; ') : [`${cookieName(tls)}=`, ...attrs, 'Max-Age=0'].join('; ');
}

export class Callers {
  constructor(
    private readonly gate: Gate,
    private readonly sessions: SessionStore,
    private readonly tls: boolean,
  ) {}

  /** The caller of `method` (a table row's name), through the gate; throws UnauthenticatedError without a good session or token. */
  async identify(method: string, req: IncomingMessage): Promise<Caller> {
    const from = clientAddress(req);
    const id = cookieOf(req, cookieName(this.tls));
    const session = id ? await this.sessions.get(id) : undefined;
    const bearer = req.headers.authorization;
    if (!session && !bearer) {
      // No credential at all is a signed-out browser, not a guess: it does not count against the address.
      throw new UnauthenticatedError(id ? 'the session has ended: sign in again' : 'sign in first');
    }
    const md = new Metadata();
    md.set('authorization', session ? `Bearer ${session.token.reveal()}` : (bearer ?? ''));
    const who = await this.gate.identify(method, md, from).catch(async (err: unknown) => {
      // Its token was revoked or expired: the session goes (a store that cannot delete it now still refuses the token).
      if (session) await this.sessions.delete(session.id).catch(() => undefined);
      throw err;
    });
    return { who, session, from };
  }

  /** Identifies and authorizes; for a mutation with a session, checks its CSRF token and the Origin first. */
  async check(method: string, req: IncomingMessage, mutation: boolean): Promise<Caller> {
    const caller = await this.identify(method, req);
    if (mutation && caller.session) checkForgery(req, caller.session);
    this.gate.authorize(method, caller.who, caller.from);
    return caller;
  }
}

function checkForgery(req: IncomingMessage, s: Session): void {
  const header = req.headers[CSRF_HEADER];
  if (!csrfMatches(s, typeof header === 'string' ? header : undefined))
    throw new PermissionDeniedError(`missing or wrong ${CSRF_HEADER} header: reload the page`);
  const origin = req.headers.origin;
  if (origin !== undefined && hostOf(origin) !== req.headers.host)
    throw new PermissionDeniedError(`origin ${origin.slice(0, 100)} is not this server`);
}

/** The host:port of an Origin header; '' for 'null' or anything unparsable. */
function hostOf(origin: string): string {
  try {
    return new URL(origin).host;
  } catch {
    return '';
  }
}
