/**
 * W3C trace context (https://www.w3.org/TR/trace-context/) as runmesh
 * carries it: in gRPC call metadata (`traceparent`, `tracestate`), in the
 * job record, in the Assign, and in the job's environment (`TRACEPARENT`,
 * `TRACESTATE`). Plain strings, no OpenTelemetry code: the CLI imports this
 * file and nothing else of tracing, so a client command pays nothing for it.
 */
import { Metadata } from '@grpc/grpc-js';

/** One hop's trace context: `traceparent` (`00-<trace id>-<span id>-<flags>`), `tracestate` ('' for none). */
export interface TraceContext {
  traceparent: string;
  tracestate: string;
}

/** The header names, as W3C spells them (gRPC metadata keys are lower case). */
export const TRACEPARENT_HEADER = 'traceparent';
export const TRACESTATE_HEADER = 'tracestate';

/** The longest tracestate we pass on: W3C allows 32 members; 512 characters is what its propagators keep. */
const MAX_TRACESTATE = 512;

/** The context a caller sent in its call metadata, unchecked; undefined when it sent no traceparent. */
export function traceContextInMetadata(md: Metadata): { traceparent: string; tracestate: string } | undefined {
  const parent = md.get(TRACEPARENT_HEADER)[0];
  if (typeof parent !== 'string' || parent === '') return undefined;
  const state = md.get(TRACESTATE_HEADER).filter((v): v is string => typeof v === 'string');
  return { traceparent: parent, tracestate: state.join(',') };
}

/**
 * Call metadata that continues the trace in `env` (TRACEPARENT, TRACESTATE),
 * so a `runmesh submit` run inside a job joins that job's trace. Empty
 * metadata when the variable is unset; the server checks the value.
 */
export function traceMetadataFromEnv(env: NodeJS.ProcessEnv): Metadata {
  const md = new Metadata();
  const parent = env.TRACEPARENT?.trim();
  if (!parent) return md;
  md.set(TRACEPARENT_HEADER, parent);
  const state = env.TRACESTATE?.trim();
  if (state) md.set(TRACESTATE_HEADER, state.slice(0, MAX_TRACESTATE));
  return md;
}

/** The variables a job's process gets for `tc`: none without one. */
export function traceEnv(tc: TraceContext | undefined): Record<string, string> {
  if (!tc?.traceparent) return {};
  return tc.tracestate ? { TRACEPARENT: tc.traceparent, TRACESTATE: tc.tracestate } : { TRACEPARENT: tc.traceparent };
}

/** A context from stored or received fields ('' meaning none). */
export function traceContextOf(traceparent: string, tracestate: string | undefined): TraceContext | undefined {
  return traceparent ? { traceparent, tracestate: tracestate ?? '' } : undefined;
}
