/**
 * JobIdentityService: a running job exchanges its job token for an OIDC ID
 * token. Only a job token may call it (the table's `job.self`), and only about
 * its own attempt, which must still be the job's current one.
 */
import type { Server } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { JobIdentityServiceService, type IssueIdTokenRequest, type IssueIdTokenResponse } from '../../proto/gen/runmesh/v1/identity.js';
import { PermissionDeniedError, UnauthenticatedError, type Gate, type Principal } from '../auth/index.js';
import type { JobRepo } from '../jobs/repo.js';
import type { Issuer } from '../oidc/issuer.js';
import { guardedUnary } from './guard.js';
import { invalid } from './status.js';

export interface IdentityServiceDeps {
  gate: Gate;
  repo: JobRepo;
  issuer: Issuer;
  /** An agent's labels, from the mesh's directory ({} when it is not there). */
  agentLabels(name: string): Record<string, string>;
  logger: Logger;
}

const MAX_AUDIENCE = 256;

export class IdentityServiceImpl {
  constructor(private readonly d: IdentityServiceDeps) {}

  addToServer(server: Server): void {
    const { gate, logger } = this.d;
    server.addService(JobIdentityServiceService, {
      issueIdToken: guardedUnary(gate, 'JobIdentityService.IssueIdToken', logger, (req: IssueIdTokenRequest, who) => this.issue(req, who)),
    });
  }

  private async issue(req: IssueIdTokenRequest, who: Principal): Promise<IssueIdTokenResponse> {
    if (!req.audience) throw invalid('audience', 'missing: name who will accept the token');
    if (req.audience.length > MAX_AUDIENCE) throw invalid('audience', `longer than ${MAX_AUDIENCE} characters`);
    const scope = who.job;
    if (!scope) throw new PermissionDeniedError('only a job token (RUNMESH_JOB_TOKEN) gets an ID token');
    const v = await this.d.repo.get(scope.id);
    const a = v?.record.job.attempts.find((x) => x.number === scope.attempt);
    // The gate just checked the attempt is live; a record gone since is as good as ended.
    if (!v || !a) throw new UnauthenticatedError(`job ${scope.id}: the attempt has ended`);
    const { job } = v.record;
    const deadline = Date.parse(a.assignedAt ?? '') + job.spec.timeoutSeconds * 1000;
    const { token, expiresAt } = await this.d.issuer.issue(
      {
        jobId: job.id,
        name: job.spec.name,
        tenant: job.spec.tenant,
        attempt: scope.attempt,
        agent: a.agent,
        labels: this.d.agentLabels(a.agent),
        deadline: Number.isFinite(deadline) ? deadline : Date.now(),
      },
      req.audience,
    );
    this.d.logger.info({ job_id: job.id, attempt: scope.attempt, audience: req.audience.slice(0, 64) }, 'id token issued');
    return { token, expiresAt: new Date(expiresAt).toISOString() };
  }
}
