/**
 * The authorization table: every client-facing RPC names the verb it needs,
 * and each role is granted a set of verbs. One gate (gate.ts) enforces it for
 * every call; a table test walks every method of every service against every
 * role. A method missing from the table is refused (deny by default).
 *
 * Tenants are checked per job on top of this: a caller sees only its tenants'
 * jobs, and a job of another tenant is NOT_FOUND. A job token (role `job`) is
 * scoped to its own job as well: `job.self` methods act on that job only,
 * and any other job is NOT_FOUND for it.
 */
import type { Role } from './roles.js';

export type Verb =
  /** Submit jobs (to one of its tenants). */
  | 'jobs.submit'
  /** Read jobs, their logs and their events (its tenants'). */
  | 'jobs.read'
  /** Cancel jobs (its tenants'). */
  | 'jobs.cancel'
  /** Re-drive jobs that ended without succeeding (its tenants'): the dead-letter queue's verb. */
  | 'jobs.retry'
  /** Cluster status, peers, agents. */
  | 'cluster.read'
  /** Drain, cordon, uncordon, revoke and rotate agents. */
  | 'cluster.manage'
  /** Create, list and revoke tokens. */
  | 'tokens.manage'
  /** Read the audit log. */
  | 'audit.read'
  /** Set and delete secrets (in its tenants). Nobody can read a value back. */
  | 'secrets.write'
  /** List secrets' names and metadata (its tenants'). */
  | 'secrets.list'
  /** Re-encrypt every secret under the server's current key. */
  | 'secrets.rotate'
  /** Create and delete webhooks (inbound ones submit jobs, outbound ones send events out): admins only. */
  | 'hooks.manage'
  /** List webhooks (never their secrets) and read outbound deliveries. */
  | 'hooks.read'
  /**
   * A job token's own job, and only it: read its spec and state, exchange
   * itself for an OIDC ID token, read its artifacts and those of the jobs it needs.
   */
  | 'job.self';

/** gRPC method ("Service.Method", as in the proto) → the verb it needs, or the verbs any one of which will do. */
export const METHOD_VERBS: Readonly<Record<string, Verb | readonly Verb[]>> = {
  'JobService.Submit': 'jobs.submit',
  'JobService.SubmitBatch': 'jobs.submit',
  'JobService.Get': ['jobs.read', 'job.self'],
  'JobService.List': 'jobs.read',
  'JobService.Watch': 'jobs.read',
  'JobService.Logs': 'jobs.read',
  'JobService.Cancel': 'jobs.cancel',
  // A pipeline is its jobs: read and cancelled under the jobs' verbs, in the jobs' tenant.
  'PipelineService.GetPipeline': 'jobs.read',
  'PipelineService.CancelPipeline': 'jobs.cancel',
  'PipelineService.ListPipelines': 'jobs.read',
  'JobService.Retry': 'jobs.retry',
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
  'JobIdentityService.IssueIdToken': 'job.self',
  'SecretService.SetSecret': 'secrets.write',
  'SecretService.DeleteSecret': 'secrets.write',
  'SecretService.ListSecrets': 'secrets.list',
  'SecretService.RotateSecretsKey': 'secrets.rotate',
  // A schedule or a template submits jobs: changing one (and triggering or submitting it) is submitting; reading is reading jobs.
  'ScheduleService.CreateSchedule': 'jobs.submit',
  'ScheduleService.PauseSchedule': 'jobs.submit',
  'ScheduleService.ResumeSchedule': 'jobs.submit',
  'ScheduleService.DeleteSchedule': 'jobs.submit',
  'ScheduleService.TriggerSchedule': 'jobs.submit',
  'ScheduleService.ListSchedules': 'jobs.read',
  'ScheduleService.GetSchedule': 'jobs.read',
  'TemplateService.CreateTemplate': 'jobs.submit',
  'TemplateService.DeleteTemplate': 'jobs.submit',
  'TemplateService.SubmitTemplate': 'jobs.submit',
  'TemplateService.ListTemplates': 'jobs.read',
  'TemplateService.GetTemplate': 'jobs.read',
  'HookService.CreateHook': 'hooks.manage',
  'HookService.DeleteHook': 'hooks.manage',
  'HookService.ListHooks': 'hooks.read',
  'HookService.ListDeliveries': 'hooks.read',
  // A job's artifacts are read as the job is; a job token reads its own job's, and its needs' (artifact-service.ts).
  'ArtifactService.ListArtifacts': ['jobs.read', 'job.self'],
  'ArtifactService.GetArtifact': ['jobs.read', 'job.self'],
};

/** The verbs that change something: every call needing one is recorded in the audit log, whatever its result. */
const MUTATING: ReadonlySet<Verb> = new Set<Verb>([
  'jobs.submit',
  'jobs.cancel',
  'jobs.retry',
  'cluster.manage',
  'tokens.manage',
  'secrets.write',
  'secrets.rotate',
  'hooks.manage',
]);

/** Methods under a mutating verb that only read. */
const READS: ReadonlySet<string> = new Set(['TokenService.ListTokens']);

/** True when `method` changes something (a read, such as TokenService.ListTokens, does not, even under a mutating verb). */
export function mutates(method: string): boolean {
  return verbsOf(method).some((v) => MUTATING.has(v)) && !READS.has(method);
}

const ALL: readonly Verb[] = [
  'jobs.submit',
  'jobs.read',
  'jobs.cancel',
  'jobs.retry',
  'cluster.read',
  'cluster.manage',
  'tokens.manage',
  'audit.read',
  'secrets.write',
  'secrets.list',
  'secrets.rotate',
  'hooks.manage',
  'hooks.read',
];

/**
 * What each role may do. `agent` tokens are for agents only: no client call.
 * `job` is no API token's role: each attempt's job token has it (job-tokens.ts).
 */
export const GRANTS: Readonly<Record<Role, ReadonlySet<Verb>>> = {
  admin: new Set(ALL),
  // Operators work the dead-letter queue: a retry re-runs a spec its submitter already sent (and signed), nothing new.
  operator: new Set<Verb>([
    'cluster.read',
    'cluster.manage',
    'jobs.read',
    'jobs.cancel',
    'jobs.retry',
    'audit.read',
    'secrets.list',
    'hooks.read',
  ]),
  // A submitter's jobs get its tenants' secrets (and could print them in some encoding masking misses), so it may manage them.
  submitter: new Set<Verb>(['jobs.submit', 'jobs.read', 'jobs.cancel', 'jobs.retry', 'secrets.write', 'secrets.list']),
  viewer: new Set<Verb>(['jobs.read', 'cluster.read']),
  agent: new Set<Verb>(),
  job: new Set<Verb>(['job.self']),
};

/** The verbs any one of which lets a caller call `method`; none when it is not in the table (then nobody may call it). */
export function verbsOf(method: string): readonly Verb[] {
  const v = METHOD_VERBS[method];
  return v === undefined ? [] : typeof v === 'string' ? [v] : v;
}

/** The verb `method` needs (the first, when several will do), or undefined when it is not in the table. */
export const verbOf = (method: string): Verb | undefined => verbsOf(method)[0];

/** True when `role` may call `method`. */
export function allowed(role: Role, method: string): boolean {
  return verbsOf(method).some((v) => GRANTS[role].has(v));
}
