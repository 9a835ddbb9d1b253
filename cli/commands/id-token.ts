/**
 * `runmesh id-token --audience X`, inside a job: exchanges the attempt's job
 * token (RUNMESH_JOB_TOKEN) for an OIDC ID token from the control plane
 * (RUNMESH_SERVER) and prints it, for a cloud provider or any relying party.
 */
import { credentials } from '@grpc/grpc-js';
import { Option, type Command } from 'commander';
import { JobIdentityServiceClient } from '../../proto/gen/runmesh/v1/identity.js';
import { bearer, unary, withConnection } from '../client.js';
import { UsageError } from '../errors.js';
import { printJson } from '../format.js';
import { serverOption } from '../options.js';

interface IdTokenOptions {
  server: string;
  audience: string;
  jobToken?: string;
  json?: boolean;
}

export function registerIdToken(program: Command): void {
  program
    .command('id-token')
    .description("inside a job: print an OIDC ID token for this job (exchanges the job's RUNMESH_JOB_TOKEN)")
    .requiredOption('--audience <aud>', 'who will accept the token (its "aud" claim)')
    .addOption(new Option('--job-token <token>', "the attempt's job token").env('RUNMESH_JOB_TOKEN'))
    .addOption(serverOption())
    .option('--json', 'print {"token", "expires_at"}')
    .action((options: IdTokenOptions) => idToken(options));
}

async function idToken(o: IdTokenOptions): Promise<void> {
  const token = o.jobToken;
  if (!token) throw new UsageError('no job token: runmesh id-token runs inside a job, which has RUNMESH_JOB_TOKEN');
  const res = await withConnection({ server: o.server, token }, (conn) => {
    // On the connection's channel (its TLS), with the job token as the bearer.
    const identity = new JobIdentityServiceClient(conn.server, credentials.createInsecure(), {
      channelOverride: conn.jobs.getChannel(),
      interceptors: [bearer(token)],
    });
    return unary(conn, 'JobIdentityService.IssueIdToken', identity.issueIdToken.bind(identity), { audience: o.audience });
  });
  if (o.json) printJson({ token: res.token, expires_at: res.expiresAt });
  else process.stdout.write(`${res.token}\n`);
}
