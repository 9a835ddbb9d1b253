/**
 * Roles and principals. A token carries one role and a list of tenants (an
 * admin's: all of them). What each role may do is the table in table.ts.
 */
import { PermissionDeniedError } from './errors.js';

export const ROLES = ['admin', 'operator', 'submitter', 'viewer', 'agent', 'job'] as const;
export type Role = (typeof ROLES)[number];

export const isRole = (text: string): text is Role => (ROLES as readonly string[]).includes(text);

/** The roles an API token (or a JWT) may have: `job` is only ever a job token's, minted per attempt. */
export const TOKEN_ROLES: readonly Role[] = ROLES.filter((r) => r !== 'job');
export const isTokenRole = (text: string): text is Role => isRole(text) && text !== 'job';

/** Who is calling, as the gate established it. */
export interface Principal {
  /** The token's public id. */
  readonly id: string;
  /** The token's label ("ci-bot"), for messages and the audit trail. */
  readonly name: string;
  readonly role: Role;
  /** The tenants it may act in; 'all' for an admin. */
  readonly tenants: readonly string[] | 'all';
  /** A job token's scope (role `job`): the one attempt it was minted for. */
  readonly job?: { readonly id: string; readonly attempt: number };
}

/** The tenant a job of this caller belongs to when nobody names one. */
export const DEFAULT_TENANT = 'default';

/**
 * True when `p` may see and act on jobs of `tenant` (what it may do there is
 * the table's call). Never for a job token: it sees its own job only, through
 * `canSeeJob`, so a path that forgets the scope shows it nothing.
 */
export function canSee(p: Principal, tenant: string): boolean {
  if (p.role === 'job') return false;
  return p.tenants === 'all' || p.tenants.includes(tenant);
}

/** True when `p` may see the job `jobId` of `tenant`: a job token sees its own job and nothing else. */
export function canSeeJob(p: Principal, tenant: string, jobId: string): boolean {
  if (p.role === 'job') return p.job?.id === jobId && p.tenants !== 'all' && p.tenants.includes(tenant);
  return canSee(p, tenant);
}

/**
 * The tenant a new job of `p` goes to: the one it names, if it may act there;
 * else its only tenant. A job's tenant never comes on trust from the spec.
 * Throws PermissionDeniedError naming the tenant, or (several tenants, none
 * named) a `pick` error the caller turns into INVALID_ARGUMENT.
 */
export function tenantFor(p: Principal, requested: string, field: string): string | { pick: string } {
  if (requested) {
    if (!canSee(p, requested))
      throw new PermissionDeniedError(`${field}: token ${p.name || p.id} may not act in tenant ${requested.slice(0, 64)}`);
    return requested;
  }
  if (p.tenants === 'all') return DEFAULT_TENANT;
  if (p.tenants.length === 1) return p.tenants[0]!;
  return { pick: `name one of the token's tenants: ${p.tenants.join(', ')}` };
}
