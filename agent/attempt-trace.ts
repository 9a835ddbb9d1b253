/**
 * The agent's span of an attempt, `runmesh.attempt` (docs/architecture.md,
 * "Tracing"): from its Assign to the exit of its process, a child of the
 * trace context the Assign carries. The job's process gets the span's
 * context as TRACEPARENT (and TRACESTATE), so what it traces, and any
 * `runmesh submit` it runs, joins the trace. With tracing off here the
 * Assign's context reaches the job unchanged. An attempt reattached after an
 * agent restart has no span (the process that began it is gone); its job
 * keeps the TRACEPARENT it was started with.
 */
import type { Assign } from '../proto/gen/runmesh/v1/agent.js';
import { qosClassToJSON } from '../proto/gen/runmesh/v1/job.js';
import { traceContextOf } from '../transport/tracing/carrier.js';
import { ATTR, SpanKind, type TracedSpan, type Tracing } from '../transport/tracing/tracing.js';
import type { ExitStatus } from './executor/index.js';

export function traceAttempt(t: Tracing, a: Assign, agent: string): TracedSpan {
  const parent = traceContextOf(a.traceParent, a.traceState);
  if (!t.enabled) return t.start('runmesh.attempt', parent);
  const qos = a.spec ? qosClassToJSON(a.spec.qos).replace('QOS_CLASS_', '').toLowerCase() : '';
  const attributes = {
    [ATTR.job]: a.jobId,
    [ATTR.attempt]: a.attempt,
    [ATTR.agent]: agent,
    [ATTR.tenant]: a.spec?.tenant ?? '',
    [ATTR.qos]: qos,
  };
  return t.start('runmesh.attempt', parent, { kind: SpanKind.CONSUMER, attributes });
}

/** Ends the span with how the attempt's process ended: `succeeded`, or its failure (`exit_code`, `timeout`, ...). */
export function endAttemptSpan(span: TracedSpan, s: ExitStatus): void {
  span.set({ 'process.exit.code': s.exitCode });
  if (s.failure === 'none') span.end('succeeded');
  else span.end(s.failure, s.message);
}
