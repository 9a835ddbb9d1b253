/**
 * Spans for the control plane and the agent, and the checking of a caller's
 * trace context. Off unless OTEL_* asks for an exporter (setup.ts): then a
 * span is a no-op and a trace context passes through unchanged, so a job
 * still gets the TRACEPARENT its submitter sent. No provider is registered
 * globally: each server and agent gets its Tracing through its options.
 */
import {
  defaultTextMapGetter,
  defaultTextMapSetter,
  isSpanContextValid,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Tracer,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import type { TraceContext } from './carrier.js';

export { SpanKind };

/** Span attribute names (docs/architecture.md, "Tracing"). */
export const ATTR = {
  job: 'runmesh.job.id',
  attempt: 'runmesh.attempt',
  agent: 'runmesh.agent',
  tenant: 'runmesh.tenant',
  qos: 'runmesh.qos',
  outcome: 'runmesh.outcome',
} as const;

export interface SpanOptions {
  kind?: SpanKind;
  attributes?: Attributes;
  /** When what the span measures began, if before now (a job's wait in the queue). */
  startTime?: Date;
}

/** A span being recorded, and the context that goes on to the next hop. */
export interface TracedSpan {
  /** This span's context; with tracing off, the parent's unchanged (undefined when there was none). */
  readonly context: TraceContext | undefined;
  set(attributes: Attributes): void;
  /** Ends the span (once; later calls do nothing), recording `outcome`; `error` marks it failed with that message. */
  end(outcome: string, error?: string): void;
}

export interface Tracing {
  /** True when spans are exported; false: no SDK loaded, spans cost nothing. */
  readonly enabled: boolean;
  /** A span under `parent`, or the first of a new trace when there is none. */
  start(name: string, parent: TraceContext | undefined, o?: SpanOptions): TracedSpan;
  /** Exports what is buffered, then stops. Idempotent. */
  shutdown(): Promise<void>;
}

const w3c = new W3CTraceContextPropagator();

/**
 * A caller's trace context checked as W3C says (version, ids not all zero,
 * hex of the right lengths), in its canonical form; undefined when it is
 * malformed, which starts a new trace rather than refusing the call.
 */
export function checkTraceContext(raw: { traceparent: string; tracestate: string } | undefined): TraceContext | undefined {
  return raw ? contextOf(w3c.extract(ROOT_CONTEXT, raw, defaultTextMapGetter)) : undefined;
}

function contextOf(ctx: Context): TraceContext | undefined {
  const sc = trace.getSpanContext(ctx);
  if (!sc || !isSpanContextValid(sc)) return undefined;
  const out: Record<string, string> = {};
  w3c.inject(ctx, out, defaultTextMapSetter);
  return out.traceparent ? { traceparent: out.traceparent, tracestate: out.tracestate ?? '' } : undefined;
}

const noop = (): void => {};

/** Tracing off: nothing recorded, contexts passed through. */
export const TRACING_OFF: Tracing = {
  enabled: false,
  start: (_name, parent) => ({ context: parent, set: noop, end: noop }),
  shutdown: () => Promise.resolve(),
};

/** Tracing through an OpenTelemetry tracer (setup.ts makes one from OTEL_*). */
export class OtelTracing implements Tracing {
  readonly enabled = true;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly tracer: Tracer,
    private readonly close: () => Promise<void>,
  ) {}

  start(name: string, parent: TraceContext | undefined, o: SpanOptions = {}): TracedSpan {
    const parentCtx = parent ? w3c.extract(ROOT_CONTEXT, parent, defaultTextMapGetter) : ROOT_CONTEXT;
    const span = this.tracer.startSpan(name, { kind: o.kind, attributes: o.attributes, startTime: o.startTime }, parentCtx);
    let ended = false;
    return {
      context: contextOf(trace.setSpan(ROOT_CONTEXT, span)),
      set: (a) => void span.setAttributes(a),
      end: (outcome, error) => {
        if (ended) return;
        ended = true;
        span.setAttribute(ATTR.outcome, outcome);
        if (error !== undefined) span.setStatus({ code: SpanStatusCode.ERROR, message: error });
        span.end();
      },
    };
  }

  shutdown(): Promise<void> {
    return (this.closing ??= this.close());
  }
}
