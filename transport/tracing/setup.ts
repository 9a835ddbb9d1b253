/**
 * Tracing as OTEL_* asks (settings.ts says how it is read): the SDK
 * (sdk.ts) is imported only when tracing is on, so with it off no SDK module
 * is read and nothing is exported.
 */
import type { Logger } from 'pino';
import { VERSION } from '../../proto/version.js';
import { tracingSettings } from './settings.js';
import { TRACING_OFF, type Tracing } from './tracing.js';

/**
 * Tracing as OTEL_* in `env` asks, for the service `name` (`runmesh-server`,
 * `runmesh-agent`) at this release; TRACING_OFF, with no SDK loaded, when it asks for none.
 */
export async function startTracing(env: NodeJS.ProcessEnv, name: string, log: Logger): Promise<Tracing> {
  const settings = tracingSettings(env);
  if (!settings) return TRACING_OFF;
  const { sdkTracing } = await import('./sdk.js');
  const tracing = await sdkTracing(settings, { name, version: VERSION }, log);
  log.info({ exporters: settings.exporters, protocol: settings.protocol }, 'tracing on');
  return tracing;
}
