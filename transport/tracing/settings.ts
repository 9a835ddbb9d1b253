/**
 * Whether to trace, read from the standard OTEL_* variables (setup.ts loads
 * the SDK only when it is on).
 *
 * On when OTEL_TRACES_EXPORTER names an exporter (`otlp`, `console`), or is
 * unset while OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT
 * is set. Off when none of those is set (unlike the OpenTelemetry SDK's own
 * default of `otlp`: a runmesh server does not send to localhost:4318 unless
 * told), when OTEL_TRACES_EXPORTER is `none`, or OTEL_SDK_DISABLED is `true`.
 * OTLP goes over HTTP: OTEL_EXPORTER_OTLP_TRACES_PROTOCOL (or
 * OTEL_EXPORTER_OTLP_PROTOCOL) `http/protobuf` (default) or `http/json`. The
 * exporter, sampler, batching and resource read the rest themselves
 * (OTEL_EXPORTER_OTLP_*_HEADERS, _TIMEOUT, _COMPRESSION, OTEL_TRACES_SAMPLER,
 * OTEL_BSP_*, OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES).
 */
import { NamedError } from '../../proto/cause.js';

/** An OTEL_* variable holds a value we cannot act on; `variable` names it. */
export class TracingConfigError extends NamedError {
  constructor(
    readonly variable: string,
    detail: string,
  ) {
    super(`${variable}: ${detail}`);
  }
}

export type ExporterKind = 'otlp' | 'console';
export type OtlpProtocol = 'http/protobuf' | 'http/json';

export interface TracingSettings {
  exporters: ExporterKind[];
  protocol: OtlpProtocol;
}

/** Who is tracing: the resource's service.name unless OTEL_SERVICE_NAME says otherwise, and its version. */
export interface TracedService {
  name: string;
  version: string;
}

const EXPORTERS: readonly string[] = ['otlp', 'console'];
const PROTOCOLS: readonly string[] = ['http/protobuf', 'http/json'];

/** What OTEL_* asks for; undefined when tracing is off. Throws TracingConfigError for a value it cannot honour. */
export function tracingSettings(env: NodeJS.ProcessEnv): TracingSettings | undefined {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return undefined;
  const named = (env.OTEL_TRACES_EXPORTER ?? '')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter((s) => s !== '');
  const endpoint = !!(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim() || env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim());
  const wanted = named.length > 0 ? named : endpoint ? ['otlp'] : [];
  if (wanted.includes('none')) {
    if (wanted.length > 1) throw new TracingConfigError('OTEL_TRACES_EXPORTER', `"none" goes alone, not with ${wanted.join(',')}`);
    return undefined;
  }
  const unknown = wanted.find((e) => !EXPORTERS.includes(e));
  if (unknown !== undefined)
    throw new TracingConfigError('OTEL_TRACES_EXPORTER', `"${unknown}" is not an exporter runmesh has (otlp, console or none)`);
  if (wanted.length === 0) return undefined;
  const protocolVar = env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL?.trim() ? 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL' : 'OTEL_EXPORTER_OTLP_PROTOCOL';
  const protocol = env[protocolVar]?.trim().toLowerCase() || 'http/protobuf';
  if (!PROTOCOLS.includes(protocol))
    throw new TracingConfigError(
      protocolVar,
      `"${protocol}" is not supported: runmesh exports OTLP over HTTP (http/protobuf or http/json)`,
    );
  return { exporters: [...new Set(wanted)] as ExporterKind[], protocol: protocol as OtlpProtocol };
}
