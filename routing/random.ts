/**
 * The router's random source: injectable, and by default a seeded xorshift32
 * so that a run (and a failing test) can be replayed exactly.
 */

/** Returns a float in [0, 1). */
export type RandomSource = () => number;

export const DEFAULT_SEED = 0x2545f491;

/** Marsaglia's xorshift32; the seed must be non-zero (0 is replaced by the default). */
export function xorshift32(seed = DEFAULT_SEED): RandomSource {
  let s = seed >>> 0 || DEFAULT_SEED;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 0x1_0000_0000;
  };
}
