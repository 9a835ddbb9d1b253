/**
 * The scheduler's spans (docs/architecture.md, "Tracing"): `runmesh.schedule`,
 * a job's wait from the moment it was last queued to its assignment being
 * stored, and under it `runmesh.dispatch`, the delivery of its Assign, whose
 * context the Assign carries to the agent. Both hang under the job's own
 * trace context (its Submit span, or the submitter's traceparent).
 */
import type { Attributes } from '@opentelemetry/api';
import { JobState } from '../../proto/gen/runmesh/v1/job.js';
import { traceContextOf, type TraceContext } from '../../transport/tracing/carrier.js';
import { ATTR, SpanKind, type TracedSpan, type Tracing } from '../../transport/tracing/tracing.js';
import type { JobRecord } from '../jobs/record.js';
import { qosName } from './convert.js';

/** The job's trace context, as stored at submit. */
export function jobTrace(r: JobRecord): TraceContext | undefined {
  return traceContextOf(r.job.traceParent, r.traceState);
}

function attributesOf(r: JobRecord, agent: string): Attributes {
  const { job } = r;
  return {
    [ATTR.job]: job.id,
    [ATTR.attempt]: job.attempt,
    [ATTR.agent]: agent,
    [ATTR.tenant]: job.spec.tenant,
    [ATTR.qos]: qosName(job.spec.qos),
  };
}

/** When the job last became QUEUED (submitted, promoted after a backoff, re-queued). */
function queuedAt(r: JobRecord): Date | undefined {
  const t = r.job.timeline;
  for (let i = t.length - 1; i >= 0; i--) {
    const e = t[i]!;
    if (e.state === JobState.JOB_STATE_QUEUED && e.at) return new Date(e.at);
  }
  return undefined;
}

/** Records the wait of `r`, just stored assigned; returns the context its dispatch goes under. */
export function traceScheduled(t: Tracing, r: JobRecord): TraceContext | undefined {
  const parent = jobTrace(r);
  if (!t.enabled) return parent;
  const agent = r.job.attempts.at(-1)?.agent ?? '';
  const span = t.start('runmesh.schedule', parent, { kind: SpanKind.INTERNAL, attributes: attributesOf(r, agent), startTime: queuedAt(r) });
  span.end('assigned');
  return span.context;
}

/** The delivery of `r`'s Assign to `agent`, under `parent` (its schedule span, or the job's context for a re-send). */
export function dispatchSpan(t: Tracing, r: JobRecord, agent: string, parent: TraceContext | undefined): TracedSpan {
  return t.start('runmesh.dispatch', parent, t.enabled ? { kind: SpanKind.PRODUCER, attributes: attributesOf(r, agent) } : undefined);
}
