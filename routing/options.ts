/** Router options, resolved once: nothing downstream checks for undefined. */
import { RoutingOptionError } from './errors.js';
import type { HealthTracker } from './health.js';
import { xorshift32, type RandomSource } from './random.js';

export interface RouterOptions {
  /** Tenant → fair-share weight (> 0). Tenants not listed get `defaultWeight`. */
  tenantWeights?: Readonly<Record<string, number>>;
  /** Weight of unlisted tenants. Default 1. */
  defaultWeight?: number;
  /** Random source in [0, 1) for power-of-two choices. Default: xorshift32 seeded with `seed`. */
  random?: RandomSource;
  /** Seed for the default random source. Default 0x2545f491. */
  seed?: number;
  /** Health and circuit breakers; without one every agent counts as healthy. */
  health?: HealthTracker;
}

export interface ResolvedRouterOptions {
  readonly weightOf: (tenant: string) => number;
  readonly random: RandomSource;
  readonly health: HealthTracker | undefined;
}

const positive = (w: number): boolean => Number.isFinite(w) && w > 0;

export function resolveRouterOptions(o: RouterOptions = {}): ResolvedRouterOptions {
  const weights = new Map(Object.entries(o.tenantWeights ?? {}));
  const fallback = o.defaultWeight ?? 1;
  if (!positive(fallback)) throw new RoutingOptionError('defaultWeight', `must be a positive number, got ${fallback}`);
  for (const [t, w] of weights) if (!positive(w)) throw new RoutingOptionError(`tenantWeights.${t}`, `must be a positive number, got ${w}`);
  return {
    weightOf: (tenant) => weights.get(tenant) ?? fallback,
    random: o.random ?? xorshift32(o.seed),
    health: o.health,
  };
}
