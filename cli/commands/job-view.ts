/** Human renderings of jobs: the `jobs ls` table and the `jobs get` page. */
import {
  type Attempt,
  ConcurrencyConflict,
  Executor,
  FailureCategory,
  type Job,
  type JobSpec,
  JobState,
} from '../../proto/gen/runmesh/v1/job.js';
import { between, formatDuration, parseTime, relativeTime } from '../duration.js';
import {
  commandText,
  cpuSeconds,
  executorName,
  failureName,
  humanBytes,
  indent,
  keyValues,
  mebibytes,
  stateColumn,
  qosName,
  stateName,
  strategyName,
  table,
} from '../format.js';
import { describeEnd } from '../outcome.js';
import { annotationsTable, progressLine } from './job-progress-view.js';

const COMMAND_WIDTH = 40;

/** One row per job: what an operator scans for; the state coloured when `colour`. */
export function jobsTable(jobs: readonly Job[], now: number, colour = false): string {
  const rows = jobs.map((job) => {
    const last = job.attempts.at(-1);
    return [
      job.id,
      job.spec?.name || '-',
      stateName(job.state),
      String(job.attempt),
      last?.agent || '-',
      relativeTime(job.createdAt, now),
      last ? attemptDuration(last, now) : '-',
      clip(commandText(job.spec?.argv ?? [], job.spec?.script ?? ''), COMMAND_WIDTH),
    ];
  });
  return table(['ID', 'NAME', 'STATE', 'ATTEMPT', 'AGENT', 'CREATED', 'DURATION', 'COMMAND'], rows, stateColumn(2, colour));
}

/** Everything `jobs get` shows: summary, attempts, timeline. */
export function jobPage(job: Job, now: number): string {
  const parts = [summary(job, now)];
  const annotations = annotationsTable(job);
  if (annotations) parts.push(`annotations:\n${indent(annotations)}`);
  if (job.attempts.length > 0) parts.push(`attempts:\n${indent(attemptsTable(job.attempts, now))}`);
  if (job.timeline.length > 0) parts.push(`timeline:\n${indent(timelineTable(job, now))}`);
  return parts.join('\n\n');
}

function summary(job: Job, now: number): string {
  const spec = job.spec;
  const notBefore = parseTime(job.notBefore);
  return keyValues([
    ['id', job.id],
    ['name', spec?.name || undefined],
    ['state', stateLine(job)],
    ['progress', progressLine(job)],
    ['command', spec ? commandText(spec.argv, spec.script) : undefined],
    ['selector', spec?.selector || undefined],
    [
      'pipeline',
      job.pipelineId
        ? `${job.pipelineId}${spec?.needs.length ? `, needs ${spec.needs.join(', ')}` : ''}${spec?.allowFailure ? ' (may fail)' : ''}`
        : undefined,
    ],
    ['schedule', job.schedule ? `${job.schedule}, tick ${job.scheduledAt ?? '?'}` : undefined],
    ['executor', spec ? executorLine(spec) : undefined],
    ['limits', spec ? limitsLine(spec) : undefined],
    ['qos', spec ? `${qosName(spec.qos)}, tenant ${spec.tenant}, priority ${spec.priority}` : undefined],
    ['strategy', spec?.strategy ? strategyName(spec.strategy) : undefined],
    ['affinity', spec?.affinityKey || undefined],
    ['concurrency', spec?.concurrencyGroup ? groupLine(spec) : undefined],
    ['caches', spec?.caches.length ? spec.caches.map((c) => `${c.key}:${c.path}`).join(', ') : undefined],
    ['artifacts', spec?.artifacts.length ? `${spec.artifacts.join(', ')}${spec.artifactsOptional ? ' (optional)' : ''}` : undefined],
    ['uploaded', uploadedLine(job)],
    ['superseded by', job.supersededBy || undefined],
    ['attempts', spec ? attemptsLine(job, spec) : undefined],
    ['retry policy', spec ? retryLine(spec) : undefined],
    ['avoids', job.avoidedAgents.length > 0 ? `${job.avoidedAgents.join(', ')} (an earlier attempt failed there)` : undefined],
    ['created', stamp(job.createdAt, now)],
    ['updated', stamp(job.updatedAt, now)],
    // The trace id, to look the job up in a tracing backend (docs/architecture.md, "Tracing").
    ['trace', job.traceParent.split('-')[1] || undefined],
    ['waiting', job.waitingReason || undefined],
    ['next try', notBefore !== undefined && notBefore > now ? relativeTime(job.notBefore, now) : undefined],
  ]);
}

/**
 * What the latest attempt that got as far as uploading stored of its
 * artifacts: `3 files, 1.2 MiB (attempt 2)`, or why the upload failed.
 */
function uploadedLine(job: Job): string | undefined {
  const a = job.attempts.findLast((attempt) => attempt.artifacts !== undefined);
  if (!a?.artifacts) return undefined;
  const { files, bytes, error } = a.artifacts;
  if (error) return `failed: ${error} (attempt ${a.number})`;
  if (files === 0) return `none: no file matched the globs (attempt ${a.number})`;
  return `${files === 1 ? '1 file' : `${files} files`}, ${humanBytes(bytes)} (attempt ${a.number}; runmesh artifacts ls ${job.id})`;
}

/** `2 of 3`; after a Retry, the current sequence's count and where it began. */
function attemptsLine(job: Job, spec: JobSpec): string {
  if (job.redrives === 0) return `${job.attempts.length} of ${spec.maxAttempts}`;
  const current = job.attempts.filter((a) => a.number >= job.sequenceStart).length;
  const times = job.redrives === 1 ? 'once' : `${job.redrives} times`;
  return `${current} of ${spec.maxAttempts} since attempt ${job.sequenceStart} (${job.attempts.length} in all; retried ${times})`;
}

/** The job's own retry backoff, retry_on and queue timeout; undefined when it keeps the defaults. */
function retryLine(spec: JobSpec): string | undefined {
  const parts = [
    spec.retryBackoffMinMs > 0 ? `backoff ${formatDuration(spec.retryBackoffMinMs)}..${formatDuration(spec.retryBackoffMaxMs)}` : '',
    spec.retryOn.length > 0 ? `on ${spec.retryOn.join(', ')}` : '',
    spec.queueTimeoutSeconds > 0 ? `queue timeout ${formatDuration(spec.queueTimeoutSeconds * 1000)}` : '',
  ].filter(Boolean);
  return parts.length > 0 ? parts.join('; ') : undefined;
}

/** `group deploy, 1 at a time, on conflict: queue`. */
function groupLine(spec: JobSpec): string {
  const mode = (ConcurrencyConflict[spec.onConflict || ConcurrencyConflict.CONCURRENCY_CONFLICT_QUEUE] ?? '')
    .replace('CONCURRENCY_CONFLICT_', '')
    .toLowerCase()
    .replace(/_/g, '-');
  return `group ${spec.concurrencyGroup}, ${spec.concurrency ?? 1} at a time, on conflict: ${mode}`;
}

function executorLine(spec: JobSpec): string {
  const name = executorName(spec.executor || Executor.EXECUTOR_SHELL);
  return spec.noNetwork ? `${name}, no network` : name;
}

/** The job's resources as the limits its agent enforces (where it has a cgroup); `-` when it set none. */
function limitsLine(spec: JobSpec): string {
  const memory = spec.resources?.memoryMb ?? 0;
  const cpu = spec.resources?.cpuMillis ?? 0;
  const parts = [memory > 0 ? `memory ${memory} MiB` : '', cpu > 0 ? `cpu ${cpu}m` : ''].filter(Boolean);
  return parts.length > 0 ? parts.join(', ') : '-';
}

function stateLine(job: Job): string {
  const state = stateName(job.state);
  if (job.state === JobState.JOB_STATE_SUCCEEDED) return state;
  if (job.failure === FailureCategory.FAILURE_CATEGORY_EXIT_CODE) return `${state} (exit code ${job.exitCode})`;
  if (job.failure !== FailureCategory.FAILURE_CATEGORY_UNSPECIFIED) return describeEnd(job);
  return state;
}

function attemptsTable(attempts: readonly Attempt[], now: number): string {
  const rows = attempts.map((a) => [
    String(a.number),
    a.agent || '-',
    stateName(a.state),
    a.finishedAt && a.failure !== FailureCategory.FAILURE_CATEGORY_UNSPECIFIED ? failureName(a.failure) : '-',
    exitText(a),
    relativeTime(a.startedAt ?? a.assignedAt, now),
    attemptDuration(a, now),
    a.usage ? mebibytes(a.usage.peakMemoryBytes) : '-',
    a.usage ? cpuSeconds(a.usage.cpuSeconds) : '-',
    a.message || '',
  ]);
  return table(['#', 'AGENT', 'STATE', 'FAILURE', 'EXIT', 'STARTED', 'DURATION', 'PEAK MEM', 'CPU', 'MESSAGE'], rows);
}

// An exit code only means something when the process ran to an exit.
function exitText(a: Attempt): string {
  const exited = a.failure === FailureCategory.FAILURE_CATEGORY_EXIT_CODE || a.state === JobState.JOB_STATE_SUCCEEDED;
  return a.finishedAt && exited ? String(a.exitCode) : '-';
}

function timelineTable(job: Job, now: number): string {
  const rows = job.timeline.map((t) => [relativeTime(t.at, now), stateName(t.state), t.attempt ? String(t.attempt) : '-', t.reason]);
  return table(['WHEN', 'STATE', 'ATTEMPT', 'REASON'], rows);
}

/** Run time of an attempt: start to finish, or start to now while it runs. */
function attemptDuration(a: Attempt, now: number): string {
  const ms = between(a.startedAt, a.finishedAt ?? new Date(now).toISOString());
  return ms === undefined ? '-' : formatDuration(ms);
}

function stamp(iso: string | undefined, now: number): string | undefined {
  return parseTime(iso) === undefined ? undefined : `${relativeTime(iso, now)} (${iso})`;
}

function clip(text: string, width: number): string {
  return text.length <= width ? text : `${text.slice(0, width - 3)}...`;
}
