/**
 * Certificates for a TLS test etcd, made at setup with the cluster CA code
 * of --tls-auto (control-plane/tls/certificates.ts): a CA, etcd's server
 * certificate for 127.0.0.1, localhost and ETCD_SERVER_NAME, and a client certificate, written
 * as PEM files. More clients (another CA's, one about to expire) come from
 * `issueClient`.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createCa, issueServerCertificate, type KeyedCertificate } from '../../control-plane/tls/certificates.js';

/** A name etcd's certificate carries beside 127.0.0.1 and localhost, for --etcd-server-name. */
export const ETCD_SERVER_NAME = 'etcd.runmesh.test';

export interface TestEtcdCerts {
  /** The CA's PEM file: etcd's --trusted-ca-file, and what a client verifies etcd with. */
  caFile: string;
  serverCertFile: string;
  serverKeyFile: string;
  /** A client certificate the CA signed. */
  client: CertFiles;
  /** Writes another client certificate into the directory, signed by this CA or by `by`, valid until `notAfter` (default a year). */
  issueClient(name: string, options?: { by?: KeyedCertificate; notAfter?: Date }): Promise<CertFiles>;
}

export interface CertFiles {
  certFile: string;
  keyFile: string;
}

export async function makeEtcdCerts(dir: string): Promise<TestEtcdCerts> {
  const ca = createCa('runmesh test etcd CA');
  const write = async (name: string, pem: KeyedCertificate): Promise<CertFiles> => {
    const files = { certFile: path.join(dir, `${name}.pem`), keyFile: path.join(dir, `${name}-key.pem`) };
    await writeFile(files.certFile, pem.cert);
    await writeFile(files.keyFile, pem.key, { mode: 0o600 });
    return files;
  };
  const caFile = path.join(dir, 'ca.pem');
  await writeFile(caFile, ca.cert);
  const server = await write('server', issueServerCertificate(ca, 'etcd', { dns: ['localhost', ETCD_SERVER_NAME], ips: ['127.0.0.1'] }));
  const issueClient: TestEtcdCerts['issueClient'] = (name, options = {}) =>
    write(name, issueServerCertificate(options.by ?? ca, name, { dns: [], ips: [] }, options.notAfter));
  return { caFile, serverCertFile: server.certFile, serverKeyFile: server.keyFile, client: await issueClient('client'), issueClient };
}

/** Another CA, for "a certificate etcd does not trust" and "a CA that did not sign etcd's". */
export async function otherCa(dir: string): Promise<{ ca: KeyedCertificate; caFile: string }> {
  const ca = createCa('some other CA');
  const caFile = path.join(dir, 'other-ca.pem');
  await writeFile(caFile, ca.cert);
  return { ca, caFile };
}
