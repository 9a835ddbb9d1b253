/**
 * Tracing, shared by the control plane and the agent: W3C trace context as
 * it travels (carrier.ts, plain strings, also used by the CLI), spans
 * (tracing.ts), and the OpenTelemetry SDK set up from OTEL_* (settings.ts)
 * only when asked (setup.ts, which loads sdk.ts lazily). docs/architecture.md, "Tracing".
 */
export * from './carrier.js';
export * from './tracing.js';
export { tracingSettings, TracingConfigError, type TracedService, type TracingSettings } from './settings.js';
export { startTracing } from './setup.js';
