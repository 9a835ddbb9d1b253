/**
 * The cluster CA, shared by every peer through the store: the first peer to
 * start with `--tls-auto` creates it with a create-if-absent transaction
 * (one wins a race; every peer then uses the stored value, as with the peer
 * secret and the bootstrap admin token), later peers and restarts read it.
 * Its key sits in the store beside the peer secret: whoever can read the
 * store can already act as any peer (docs/architecture.md, Security).
 */
import { X509Certificate } from 'node:crypto';
import type { Store } from '../store/store.js';
import { createCa, type KeyedCertificate } from './certificates.js';
import { AutoTlsError } from './errors.js';

/** `{ cert, key }` (PEM) of the cluster CA; no lease. */
export const CLUSTER_CA_KEY = '/runmesh/cluster/ca';

const CA_NAME = 'runmesh cluster CA';

/** The stored CA, or a new one stored if the key is absent. A store error is thrown, never taken for "absent". */
export async function loadClusterCa(store: Store): Promise<KeyedCertificate> {
  const stored = await store.get(CLUSTER_CA_KEY);
  if (stored) return decode(stored.value);
  const fresh = createCa(CA_NAME);
  const created = await store.txn({
    compare: [{ key: CLUSTER_CA_KEY, target: 'version', op: '==', value: 0 }],
    success: [{ type: 'put', key: CLUSTER_CA_KEY, value: JSON.stringify(fresh) }],
  });
  if (created.succeeded) return fresh;
  // Another peer created it between our read and our transaction: use theirs.
  const winner = await store.get(CLUSTER_CA_KEY);
  if (!winner) throw new AutoTlsError(`the cluster CA at ${CLUSTER_CA_KEY} vanished after a lost create`);
  return decode(winner.value);
}

function decode(value: string): KeyedCertificate {
  try {
    const { cert, key } = JSON.parse(value) as Partial<KeyedCertificate>;
    if (typeof cert !== 'string' || typeof key !== 'string') throw new TypeError('cert and key must be PEM strings');
    if (!new X509Certificate(cert).ca) throw new TypeError('not a CA certificate');
    return { cert, key };
  } catch (err) {
    // The message names the key, never the value: it holds a private key.
    throw new AutoTlsError(`unreadable cluster CA at ${CLUSTER_CA_KEY}`, { cause: err instanceof TypeError ? err : undefined });
  }
}
