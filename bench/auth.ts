/**
 * What authentication adds to a call: the gate (token lookup, constant-time
 * hash compare, authorization table, rate-limit bucket) timed in-process on a
 * real token store, set against the dispatch latency measured in the same run.
 */
import { Metadata } from '@grpc/grpc-js';
import { pino } from 'pino';
import { DEFAULT_GATE_LIMITS, Gate, TokenStore } from '../control-plane/auth/index.js';
import { openEmbeddedStore } from '../control-plane/store/embedded.js';
import { tempDir } from '../test/support/processes.js';
import { round } from './stats.js';

/** Microseconds per gate check (median of five rounds of `n`). */
export async function gateMicros(n = 50_000): Promise<number> {
  const log = pino({ level: 'silent' });
  const store = await openEmbeddedStore({ dir: await tempDir('runmesh-bench-auth-') });
  const tokens = await TokenStore.open(store, log);
  try {
    // Unlimited here: the bucket's cost is measured, not its refusals.
    const gate = new Gate({ tokens, log, limits: { ...DEFAULT_GATE_LIMITS, perToken: { perSecond: 1e12, burst: 1e12 } } });
    const { token } = await tokens.create({ name: 'bench', role: 'submitter', tenants: ['a'], ttlMs: 0 });
    const md = new Metadata();
    md.set('authorization', `Bearer ${token}`);
    const rounds: number[] = [];
    for (let r = 0; r < 5; r++) {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < n; i++) await gate.check('JobService.Submit', md, '127.0.0.1:40000');
      rounds.push(Number(process.hrtime.bigint() - t0) / 1e3 / n);
    }
    return round(rounds.sort((a, b) => a - b)[2]!, 2);
  } finally {
    await tokens.close();
    await store.close();
  }
}

/** The share of an idle dispatch's p50 (ms) that authentication takes, in percent. */
export const authShare = (gateUs: number, dispatchP50Ms: number): number => round((gateUs / 1000 / dispatchP50Ms) * 100, 3);
