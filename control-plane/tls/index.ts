/**
 * tls/: `--tls-auto`. The cluster CA, kept in the store and shared by every
 * peer (cluster-ca.ts); minting certificates (certificates.ts); this peer's
 * server certificate and the files it is written to (auto-tls.ts).
 */
export { prepareAutoTls, serverNames, type AutoTls } from './auto-tls.js';
export { CLUSTER_CA_KEY } from './cluster-ca.js';
export * from './errors.js';
