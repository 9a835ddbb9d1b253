/**
 * Console sessions: signing in with an API token gives the browser an opaque
 * session id in an HttpOnly cookie; the token itself stays here, on the
 * server, as a Secret (never printed), and is checked by the gate again on
 * every request, so revoking or expiring the token ends its sessions at once.
 * Each session has its own CSRF token, which every mutation must send back
 * in a header (a cross-site form can send the cookie, never the header).
 * Sessions live in this peer's memory: a restart signs everyone out.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { Secret } from '../secret.js';

export interface Session {
  readonly id: string;
  readonly token: Secret;
  readonly csrf: string;
  readonly createdAt: number;
  lastSeen: number;
}

/** Session limits; defaults in DEFAULT_SESSION_LIMITS. */
export interface SessionLimits {
  /** A session not used for this long is gone (ms). */
  idleMs: number;
  /** A session older than this is gone however busy it is (ms). */
  maxAgeMs: number;
  /** Sessions held at most; past it, the least recently used goes. */
  max: number;
}

export const DEFAULT_SESSION_LIMITS: SessionLimits = { idleMs: 8 * 3_600_000, maxAgeMs: 24 * 3_600_000, max: 10_000 };

const newId = (): string => randomBytes(32).toString('base64url');

export class SessionStore {
  /** Insertion order is recency order: a used session is moved to the end. */
  private readonly sessions = new Map<string, Session>();

  constructor(private readonly limits: SessionLimits = DEFAULT_SESSION_LIMITS) {}

  create(token: string, now = Date.now()): Session {
    const s: Session = { id: newId(), token: new Secret(token), csrf: newId(), createdAt: now, lastSeen: now };
    this.sessions.set(s.id, s);
    while (this.sessions.size > this.limits.max) this.sessions.delete(this.sessions.keys().next().value!);
    return s;
  }

  /** The live session `id` names, touched; undefined when unknown or expired. */
  get(id: string, now = Date.now()): Session | undefined {
    const s = this.sessions.get(id);
    if (!s) return undefined;
    this.sessions.delete(id);
    if (now - s.lastSeen > this.limits.idleMs || now - s.createdAt > this.limits.maxAgeMs) return undefined;
    s.lastSeen = now;
    this.sessions.set(id, s);
    return s;
  }

  delete(id: string): void {
    this.sessions.delete(id);
  }

  get size(): number {
    return this.sessions.size;
  }
}

/** Constant-time comparison of a presented CSRF token with the session's. */
export function csrfMatches(s: Session, presented: string | undefined): boolean {
  if (!presented) return false;
  const a = Buffer.from(s.csrf);
  const b = Buffer.from(presented);
  return a.length === b.length && timingSafeEqual(a, b);
}
