/**
 * `--tls-auto`: this peer's TLS material, made without an operator. The
 * cluster CA comes from the store (cluster-ca.ts); this peer mints its own
 * server certificate from it at every start, for the names it may be reached
 * by (loopback, its host name, its interfaces' addresses, the hosts it was
 * told to listen on), so a changed address needs nothing but a restart.
 * Written under `<data-dir>/tls/`: `ca.pem` (what clients trust),
 * `server.pem` (the certificate followed by the CA's, so that an agent
 * pinning the CA finds it in the chain) and `server-key.pem` (0600). The CA's
 * key is never written to disk.
 */
import { X509Certificate } from 'node:crypto';
import { chmod, mkdir, rename, writeFile } from 'node:fs/promises';
import { hostname, networkInterfaces } from 'node:os';
import { isIP } from 'node:net';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { fingerprintOf, type ServerTlsFiles } from '../../transport/index.js';
import type { Store } from '../store/store.js';
import { issueServerCertificate, type ServerNames } from './certificates.js';
import { loadClusterCa } from './cluster-ca.js';
import { AutoTlsError } from './errors.js';

export interface AutoTls {
  /** For the gRPC and HTTPS listeners. */
  files: ServerTlsFiles;
  /** The CA certificate (PEM file) clients and peers verify against. */
  caFile: string;
  /** `sha256:<hex>` of the CA certificate's DER: what join strings carry. */
  fingerprint: string;
}

export interface AutoTlsInput {
  store: Store;
  dataDir: string;
  /** Hosts this peer listens on (wildcards are skipped: the interfaces' addresses stand for them). */
  hosts: string[];
  peerId: string;
  logger: Logger;
}

export async function prepareAutoTls(i: AutoTlsInput): Promise<AutoTls> {
  const ca = await loadClusterCa(i.store);
  const names = serverNames(i.hosts);
  const server = issueServerCertificate(ca, i.peerId, names);
  const dir = join(i.dataDir, 'tls');
  const files = { cert: join(dir, 'server.pem'), key: join(dir, 'server-key.pem') };
  const caFile = join(dir, 'ca.pem');
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await writeAtomically(files.key, server.key, 0o600);
    await writeAtomically(files.cert, server.cert + ca.cert, 0o644);
    await writeAtomically(caFile, ca.cert, 0o644);
  } catch (err) {
    throw new AutoTlsError(`cannot write TLS files in ${dir}`, { cause: err });
  }
  const fingerprint = fingerprintOf(Buffer.from(new X509Certificate(ca.cert).raw));
  i.logger.info({ ca_fingerprint: fingerprint, dns: names.dns, ips: names.ips, dir }, 'tls-auto: server certificate issued');
  return { files, caFile, fingerprint };
}

/** Loopback, the host name, every interface's address and the listen hosts, without wildcards or repeats. */
export function serverNames(hosts: string[]): ServerNames {
  const ips = new Set(['127.0.0.1', '::1']);
  const dns = new Set(['localhost', hostname()]);
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) ips.add(a.address.replace(/%.*$/, ''));
  for (const h of hosts) {
    const host = h.replace(/^\[|\]$/g, '');
    if (host === '' || host === '0.0.0.0' || host === '::') continue;
    (isIP(host) ? ips : dns).add(host);
  }
  return { dns: [...dns], ips: [...ips] };
}

async function writeAtomically(path: string, text: string, mode: number): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, text, { mode });
  await chmod(tmp, mode); // the umask may have narrowed it; 0600 must be exactly that
  await rename(tmp, path);
}
