import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { resolveOptions } from './options.js';

const base = { logger: pino({ level: 'silent' }), joinToken: 't' };

describe('control-plane options', () => {
  it('asks agents for at least four heartbeats per heartbeat timeout', () => {
    expect(resolveOptions(base)).toMatchObject({ heartbeatTimeoutMs: 4000, heartbeatIntervalMs: 1000 });
    expect(resolveOptions({ ...base, heartbeatTimeoutMs: 10_000 })).toMatchObject({ heartbeatIntervalMs: 2000 });
    expect(resolveOptions({ ...base, heartbeatTimeoutMs: 2000 })).toMatchObject({ heartbeatIntervalMs: 500 });
    expect(resolveOptions({ ...base, heartbeatTimeoutMs: 60_000 })).toMatchObject({ heartbeatIntervalMs: 2000 });
    expect(resolveOptions({ ...base, heartbeatTimeoutMs: 200 })).toMatchObject({ heartbeatIntervalMs: 100 });
    expect(resolveOptions({ ...base, heartbeatTimeoutMs: 2000, heartbeatIntervalMs: 1500 })).toMatchObject({ heartbeatIntervalMs: 1500 });
  });
});
