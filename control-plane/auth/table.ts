/**
 * The authorization table: every client-facing RPC names the verb it needs,
 * and each role is granted a set of verbs. One gate (gate.ts) enforces it for
 * every call; a table test walks every method of every service against every
 * role. A method missing from the table is refused (deny by default).
 *
 * Tenants are checked per job on top of this: a caller sees only its tenants'
 * jobs, and a job of another tenant is NOT_FOUND.
 */
import type { Role } from './roles.js';

export type Verb =
  /** Submit jobs (to one of its tenants). */
  | 'jobs.submit'
  /** Read jobs, their logs and their events (its tenants'). */
  | 'jobs.read'
  /** Cancel jobs (its tenants'). */
  | 'jobs.cancel'
  /** Cluster status, peers, agents. */
  | 'cluster.read'
  /** Drain, cordon, uncordon, revoke and rotate agents. */
  | 'cluster.manage'
  /** Create, list and revoke tokens. */
  | 'tokens.manage'
  /** Read the audit log. */
  | 'audit.read';

/** gRPC method ("Service.Method", as in the proto) → the verb it needs. */
export const METHOD_VERBS: Readonly<Record<string, Verb>> = {
  'JobService.Submit': 'jobs.submit',
  'JobService.SubmitBatch': 'jobs.submit',
  'JobService.Get': 'jobs.read',
  'JobService.List': 'jobs.read',
  'JobService.Watch': 'jobs.read',
  'JobService.Logs': 'jobs.read',
  'JobService.Cancel': 'jobs.cancel',
  'ClusterService.Status': 'cluster.read',
  'ClusterService.ListAgents': 'cluster.read',
  'ClusterService.GetAgent': 'cluster.read',
  'ClusterService.Drain': 'cluster.manage',
  'ClusterService.Cordon': 'cluster.manage',
  'ClusterService.Uncordon': 'cluster.manage',
  'ClusterService.RevokeAgent': 'cluster.manage',
  'ClusterService.RotateAgent': 'cluster.manage',
  'TokenService.CreateToken': 'tokens.manage',
  'TokenService.ListTokens': 'tokens.manage',
  'TokenService.RevokeToken': 'tokens.manage',
  'AuditService.ListAudit': 'audit.read',
};

/** The verbs that change something: every call needing one is recorded in the audit log, whatever its result. */
const MUTATING: ReadonlySet<Verb> = new Set<Verb>(['jobs.submit', 'jobs.cancel', 'cluster.manage', 'tokens.manage']);

/** Methods under a mutating verb that only read. */
const READS: ReadonlySet<string> = new Set(['TokenService.ListTokens']);

/** True when `method` changes something (a read, such as TokenService.ListTokens, does not, even under a mutating verb). */
export function mutates(method: string): boolean {
  const verb = verbOf(method);
  return verb !== undefined && MUTATING.has(verb) && !READS.has(method);
}

const ALL: readonly Verb[] = ['jobs.submit', 'jobs.read', 'jobs.cancel', 'cluster.read', 'cluster.manage', 'tokens.manage', 'audit.read'];

/** What each role may do. `agent` tokens are for agents only: no client call. */
export const GRANTS: Readonly<Record<Role, ReadonlySet<Verb>>> = {
  admin: new Set(ALL),
  operator: new Set<Verb>(['cluster.read', 'cluster.manage', 'jobs.read', 'jobs.cancel', 'audit.read']),
  submitter: new Set<Verb>(['jobs.submit', 'jobs.read', 'jobs.cancel']),
  viewer: new Set<Verb>(['jobs.read', 'cluster.read']),
  agent: new Set<Verb>(),
};

/** The verb `method` needs, or undefined when it is not in the table (then nobody may call it). */
export const verbOf = (method: string): Verb | undefined => METHOD_VERBS[method];

/** True when `role` may call `method`. */
export function allowed(role: Role, method: string): boolean {
  const verb = verbOf(method);
  return verb !== undefined && GRANTS[role].has(verb);
}
