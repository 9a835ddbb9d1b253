/** Proto messages → the console's JSON shapes (wire.ts). Enum names lose their prefix and go lower case. */
import { AgentState, type Agent } from '../../proto/gen/runmesh/v1/cluster.js';
import { executorName } from '../../proto/executor-labels.js';
import { AnnotationKind, FailureCategory, JobSpec, JobState, QosClass, type Attempt, type Job } from '../../proto/gen/runmesh/v1/job.js';
import type { AgentView, AnnotationView, AttemptView, JobDetail, JobSummary, ProgressView } from './wire.js';

const named = (table: Record<number, string>, value: number, prefix: string): string =>
  (table[value] ?? String(value)).replace(prefix, '').toLowerCase();

export const stateName = (s: JobState): string => named(JobState, s, 'JOB_STATE_');
export const failureName = (f: FailureCategory): string =>
  f === FailureCategory.FAILURE_CATEGORY_UNSPECIFIED ? '' : named(FailureCategory, f, 'FAILURE_CATEGORY_');
export const qosName = (q: QosClass): string => named(QosClass, q, 'QOS_CLASS_');
export const agentStateName = (s: AgentState): string => named(AgentState, s, 'AGENT_STATE_');

export function jobSummary(j: Job): JobSummary {
  const last = j.attempts.at(-1);
  return {
    id: j.id,
    name: j.spec?.name ?? '',
    tenant: j.spec?.tenant ?? '',
    state: stateName(j.state),
    qos: qosName(j.spec?.qos ?? QosClass.QOS_CLASS_UNSPECIFIED),
    selector: j.spec?.selector ?? '',
    createdAt: j.createdAt ?? '',
    updatedAt: j.updatedAt ?? '',
    attempt: j.attempt,
    agent: last?.agent ?? '',
    exitCode: j.exitCode,
    failure: failureName(j.failure),
    waitingReason: j.waitingReason,
    ...(j.progress ? { progress: progressView(j.progress) } : {}),
  };
}

function progressView(p: NonNullable<Job['progress']>): ProgressView {
  return { attempt: p.attempt, ...(p.percent !== undefined ? { percent: p.percent } : {}), text: p.text };
}

const ANNOTATION_KINDS: Partial<Record<AnnotationKind, AnnotationView['kind']>> = {
  [AnnotationKind.ANNOTATION_KIND_NOTICE]: 'notice',
  [AnnotationKind.ANNOTATION_KIND_WARNING]: 'warning',
  [AnnotationKind.ANNOTATION_KIND_ERROR]: 'error',
  [AnnotationKind.ANNOTATION_KIND_GROUP_START]: 'group_start',
  [AnnotationKind.ANNOTATION_KIND_GROUP_END]: 'group_end',
};

function annotationViews(j: Job): AnnotationView[] {
  return j.annotations.flatMap((a) => {
    const kind = ANNOTATION_KINDS[a.kind];
    return kind ? [{ kind, text: a.text, seq: a.seq, offset: a.offset, fromFile: a.fromFile }] : [];
  });
}

function attemptView(a: Attempt): AttemptView {
  return {
    number: a.number,
    agent: a.agent,
    state: stateName(a.state),
    assignedAt: a.assignedAt ?? '',
    startedAt: a.startedAt ?? '',
    finishedAt: a.finishedAt ?? '',
    exitCode: a.exitCode,
    failure: failureName(a.failure),
    message: a.message,
    peakMemoryBytes: String(a.usage?.peakMemoryBytes ?? ''),
    cpuSeconds: a.usage?.cpuSeconds ?? 0,
    ...(a.artifacts ? { artifacts: { files: a.artifacts.files, bytes: String(a.artifacts.bytes), error: a.artifacts.error } } : {}),
  };
}

/**
 * The spec as the proto's JSON form, minus what is not the reader's: the
 * signature's bytes. Secrets are references (name → env or file) in the spec
 * itself; their values are never in a job record.
 */
function specView(j: Job): Record<string, unknown> {
  if (!j.spec) return {};
  const json = JobSpec.toJSON(j.spec) as Record<string, unknown>;
  delete json.signature;
  if (j.spec.signature) json.signedBy = j.spec.signature.keyId;
  json.executor = executorName(j.spec.executor);
  return json;
}

export function jobDetail(j: Job): JobDetail {
  return {
    summary: jobSummary(j),
    spec: specView(j),
    timeline: j.timeline.map((t) => ({ state: stateName(t.state), at: t.at ?? '', attempt: t.attempt, reason: t.reason })),
    attempts: j.attempts.map(attemptView),
    annotations: annotationViews(j),
    droppedAnnotations: j.progress?.droppedAnnotations ?? 0,
  };
}

export function agentView(a: Agent, breaker: string): AgentView {
  return {
    name: a.name,
    state: agentStateName(a.state),
    labels: a.labels,
    slots: a.capacity?.slots ?? 0,
    slotsFree: a.free?.slots ?? 0,
    running: a.running,
    load: a.load,
    unhealthy: a.unhealthy,
    breaker,
    lastContact: a.lastHeartbeat ?? '',
    connectedAt: a.connectedAt ?? '',
    version: a.version,
    peer: a.peer,
    hostname: a.hostname,
    containment: a.containment,
    executors: a.executors.map(executorName),
  };
}
