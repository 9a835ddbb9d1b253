/**
 * Fast non-cryptographic hashing for rendezvous (highest random weight)
 * placement: FNV-1a over strings, the murmur3 finaliser to spread the bits.
 * An agent's seed is hashed once per snapshot; a (key, agent) weight is then
 * one xor and one finaliser.
 */

/** FNV-1a, 32-bit, over UTF-16 code units. */
export function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** murmur3 fmix32: a bijection on 32-bit integers with full avalanche. */
export function fmix32(x: number): number {
  let h = x >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** An agent's rendezvous seed, from its name. */
export const agentSeed = (name: string): number => fmix32((fnv1a(name) + 0x9e3779b9) >>> 0);

/** The rendezvous weight of (key, agent); the agent with the highest weight wins the key. */
export const rendezvous = (keyHash: number, seed: number): number => fmix32((keyHash ^ seed) >>> 0);
