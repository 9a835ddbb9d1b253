/**
 * The OpenTelemetry SDK, set up from OTEL_*: a tracer provider (its sampler
 * and limits read from the environment by the SDK), a batch span processor
 * per exporter, and a resource naming the service. Imported only by
 * setup.ts, and only when tracing is on.
 */
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { defaultResource, detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  ConsoleSpanExporter,
  type ReadableSpan,
  type SpanExporter,
} from '@opentelemetry/sdk-trace-base';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import type { Logger } from 'pino';
import type { ExporterKind, OtlpProtocol, TracedService, TracingSettings } from './settings.js';
import { OtelTracing, type Tracing } from './tracing.js';

/** A failed export is logged at most this often (a collector that is down fails every batch). */
const EXPORT_FAILURE_LOG_MS = 60_000;

export async function sdkTracing(s: TracingSettings, service: TracedService, log: Logger): Promise<Tracing> {
  const exporters = await Promise.all(s.exporters.map((kind) => exporterOf(kind, s.protocol)));
  // Later merges win: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES over our names, over the SDK's defaults.
  const resource = defaultResource()
    .merge(resourceFromAttributes({ [ATTR_SERVICE_NAME]: service.name, [ATTR_SERVICE_VERSION]: service.version }))
    .merge(detectResources({ detectors: [envDetector] }));
  const provider = new BasicTracerProvider({
    resource,
    spanProcessors: exporters.map((e, i) => new BatchSpanProcessor(new LoggedExporter(e, s.exporters[i]!, log))),
  });
  return new OtelTracing(provider.getTracer('runmesh', service.version), () => provider.shutdown());
}

async function exporterOf(kind: ExporterKind, protocol: OtlpProtocol): Promise<SpanExporter> {
  if (kind === 'console') return new ConsoleSpanExporter();
  // Each reads OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT, _HEADERS, _TIMEOUT and _COMPRESSION itself.
  if (protocol === 'http/json') return new (await import('@opentelemetry/exporter-trace-otlp-http')).OTLPTraceExporter();
  return new (await import('@opentelemetry/exporter-trace-otlp-proto')).OTLPTraceExporter();
}

/** An exporter whose failures reach our log (the SDK's own diagnostics are silent unless a global logger is set). */
class LoggedExporter implements SpanExporter {
  private lastLogged = 0;

  constructor(
    private readonly inner: SpanExporter,
    private readonly kind: ExporterKind,
    private readonly log: Logger,
  ) {}

  export(spans: ReadableSpan[], done: (r: ExportResult) => void): void {
    this.inner.export(spans, (r) => {
      if (r.code !== ExportResultCode.SUCCESS && Date.now() - this.lastLogged >= EXPORT_FAILURE_LOG_MS) {
        this.lastLogged = Date.now();
        this.log.warn({ err: r.error, exporter: this.kind, spans: spans.length }, 'could not export spans');
      }
      done(r);
    });
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
}
