/** gRPC health and server reflection, so grpcurl and standard probes work unmodified. */
import type { Server } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation } from 'grpc-health-check';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { repoRoot } from './paths.js';

const require = createRequire(import.meta.url);

export const SERVICES = [
  'runmesh.v1.AgentService',
  'runmesh.v1.JobService',
  'runmesh.v1.ClusterService',
  'runmesh.v1.PeerService',
  'runmesh.v1.TokenService',
  'runmesh.v1.AuditService',
  'runmesh.v1.JobIdentityService',
  'runmesh.v1.SecretService',
  'runmesh.v1.ScheduleService',
  'runmesh.v1.TemplateService',
  'runmesh.v1.PipelineService',
  'runmesh.v1.HookService',
  'runmesh.v1.ArtifactService',
] as const;

export function addReflection(server: Server): void {
  const dir = join(repoRoot(), 'proto');
  const healthDir = join(dirname(require.resolve('grpc-health-check/package.json')), 'proto');
  const files = [
    'runmesh/v1/job.proto',
    'runmesh/v1/agent.proto',
    'runmesh/v1/cluster.proto',
    'runmesh/v1/peer.proto',
    'runmesh/v1/token.proto',
    'runmesh/v1/audit.proto',
    'runmesh/v1/identity.proto',
    'runmesh/v1/secret.proto',
    'runmesh/v1/schedule.proto',
    'runmesh/v1/template.proto',
    'runmesh/v1/pipeline.proto',
    'runmesh/v1/hook.proto',
    'runmesh/v1/artifact.proto',
    'health/v1/health.proto',
  ];
  const definition = loadSync(files, { includeDirs: [dir, healthDir], keepCase: true, longs: String, enums: String, defaults: true });
  new ReflectionService(definition).addToServer(server);
}

export function addHealth(server: Server): HealthImplementation {
  const health = new HealthImplementation({ '': 'NOT_SERVING', ...Object.fromEntries(SERVICES.map((s) => [s, 'NOT_SERVING' as const])) });
  health.addToServer(server);
  return health;
}
