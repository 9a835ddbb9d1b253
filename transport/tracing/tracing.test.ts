/**
 * The tracing module alone: which OTEL_* settings turn it on, how a caller's
 * trace context is checked, that tracing off passes a context through
 * untouched, and that spans chain through the contexts they hand on.
 */
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { describe, expect, it } from 'vitest';
import { traceEnv, traceMetadataFromEnv } from './carrier.js';
import { tracingSettings } from './settings.js';
import { checkTraceContext, OtelTracing, TRACING_OFF } from './tracing.js';

const PARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

describe('tracingSettings', () => {
  it('is off unless an exporter or an OTLP endpoint is named', () => {
    expect(tracingSettings({})).toBeUndefined();
    expect(tracingSettings({ OTEL_SERVICE_NAME: 'x' })).toBeUndefined();
    expect(tracingSettings({ OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' })).toBeUndefined();
    expect(tracingSettings({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_SDK_DISABLED: 'true' })).toBeUndefined();
    expect(tracingSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' })).toEqual({ exporters: ['otlp'], protocol: 'http/protobuf' });
    expect(tracingSettings({ OTEL_TRACES_EXPORTER: 'otlp, console', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' })).toEqual({
      exporters: ['otlp', 'console'],
      protocol: 'http/json',
    });
    // The traces-specific protocol wins over the general one.
    expect(
      tracingSettings({
        OTEL_TRACES_EXPORTER: 'otlp',
        OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
        OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json',
      })?.protocol,
    ).toBe('http/json');
  });

  it('names the variable it cannot honour', () => {
    expect(() => tracingSettings({ OTEL_TRACES_EXPORTER: 'zipkin' })).toThrow(/OTEL_TRACES_EXPORTER: "zipkin"/);
    expect(() => tracingSettings({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' })).toThrow(
      /OTEL_EXPORTER_OTLP_PROTOCOL: "grpc"/,
    );
    expect(() => tracingSettings({ OTEL_TRACES_EXPORTER: 'none,otlp' })).toThrow(/OTEL_TRACES_EXPORTER/);
  });
});

describe('trace context', () => {
  it('keeps a valid traceparent and tracestate, and drops a malformed one', () => {
    expect(checkTraceContext({ traceparent: PARENT, tracestate: 'a=1,b=2' })).toEqual({ traceparent: PARENT, tracestate: 'a=1,b=2' });
    expect(checkTraceContext({ traceparent: '00-00000000000000000000000000000000-00f067aa0ba902b7-01', tracestate: '' })).toBeUndefined();
    expect(checkTraceContext({ traceparent: 'not a traceparent', tracestate: '' })).toBeUndefined();
    expect(checkTraceContext(undefined)).toBeUndefined();
    // What is stored per job stays small whatever a caller sends: W3C's 32 members at most.
    const huge = Array.from({ length: 100 }, (_, i) => `k${i}=${'v'.repeat(20)}`).join(',');
    const kept = checkTraceContext({ traceparent: PARENT, tracestate: huge })!.tracestate;
    expect(kept.split(',').length).toBeLessThanOrEqual(32);
    expect(kept.length).toBeLessThanOrEqual(1024);
  });

  it('goes from a CLI environment into metadata, and into a job environment', () => {
    const md = traceMetadataFromEnv({ TRACEPARENT: PARENT, TRACESTATE: 'a=1' });
    expect(md.get('traceparent')).toEqual([PARENT]);
    expect(md.get('tracestate')).toEqual(['a=1']);
    expect(traceMetadataFromEnv({}).getMap()).toEqual({});
    expect(traceEnv({ traceparent: PARENT, tracestate: '' })).toEqual({ TRACEPARENT: PARENT });
    expect(traceEnv(undefined)).toEqual({});
  });
});

describe('spans', () => {
  it('off: the parent context goes on unchanged, and none stays none', () => {
    const parent = { traceparent: PARENT, tracestate: 'a=1' };
    expect(TRACING_OFF.start('x', parent).context).toBe(parent);
    expect(TRACING_OFF.start('x', undefined).context).toBeUndefined();
  });

  it('on: each span is the child of the context it was given, in the same trace, keeping tracestate', async () => {
    const exporter = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    const t = new OtelTracing(provider.getTracer('test'), () => provider.shutdown());
    const submit = t.start('submit', { traceparent: PARENT, tracestate: 'a=1' });
    const dispatch = t.start('dispatch', submit.context);
    dispatch.end('delivered');
    dispatch.end('again'); // once only
    submit.end('refused', 'bad spec');
    const root = t.start('root', undefined);
    root.end('ok');
    const [d, s, r] = exporter.getFinishedSpans(); // ended spans go out at once; shutting down would clear them
    await t.shutdown();
    expect(s!.spanContext().traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    expect(s!.parentSpanContext?.spanId).toBe('00f067aa0ba902b7');
    expect(d!.parentSpanContext?.spanId).toBe(s!.spanContext().spanId);
    expect(d!.attributes['runmesh.outcome']).toBe('delivered');
    expect(s!.status).toMatchObject({ code: 2, message: 'bad spec' });
    expect(dispatch.context?.traceparent).toBe(`00-4bf92f3577b34da6a3ce929d0e0e4736-${d!.spanContext().spanId}-01`);
    expect(dispatch.context?.tracestate).toBe('a=1');
    expect(r!.parentSpanContext).toBeUndefined();
    expect(root.context?.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
  });
});
