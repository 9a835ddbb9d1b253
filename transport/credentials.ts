/**
 * TLS material: PEM files read once at the edge and turned into gRPC
 * credentials (tcp/tcps) or `ws` client options (wss).
 */
import { readFile } from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import { TransportError } from './errors.js';

/** Server TLS, as PEM file paths. A `ca` lets the server verify client certificates (mTLS). */
export interface ServerTlsFiles {
  cert: string;
  key: string;
  ca?: string;
  /** Refuse clients without a certificate signed by `ca`. Default false. */
  requireClientCert?: boolean;
}

/** Client TLS, as PEM file paths: `ca` to trust (default: system roots), `cert`+`key` for mTLS. */
export interface ClientTlsFiles {
  ca?: string;
  cert?: string;
  key?: string;
}

/** Client TLS as bytes; exactly the shape `ws` and `tls.connect` take. */
export interface ClientTlsMaterial {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

async function readPem(path: string, what: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    throw new TransportError(`cannot read TLS ${what} file ${path}`, { cause: err });
  }
}

/** Plaintext without `tls`; otherwise TLS, and mTLS when `requireClientCert`. */
export async function serverCredentials(tls: ServerTlsFiles | undefined): Promise<grpc.ServerCredentials> {
  if (tls === undefined) return grpc.ServerCredentials.createInsecure();
  if (tls.requireClientCert === true && tls.ca === undefined) {
    throw new TransportError('TLS requireClientCert needs a ca file to verify client certificates against');
  }
  const [cert, key, ca] = await Promise.all([
    readPem(tls.cert, 'certificate'),
    readPem(tls.key, 'key'),
    tls.ca === undefined ? Promise.resolve(null) : readPem(tls.ca, 'CA'),
  ]);
  return grpc.ServerCredentials.createSsl(ca, [{ cert_chain: cert, private_key: key }], tls.requireClientCert === true);
}

export async function loadClientTls(tls: ClientTlsFiles | undefined): Promise<ClientTlsMaterial> {
  if (tls === undefined) return {};
  if ((tls.cert === undefined) !== (tls.key === undefined)) {
    throw new TransportError('client TLS needs both cert and key, or neither');
  }
  const material: ClientTlsMaterial = {};
  if (tls.ca !== undefined) material.ca = await readPem(tls.ca, 'CA');
  if (tls.cert !== undefined) material.cert = await readPem(tls.cert, 'certificate');
  if (tls.key !== undefined) material.key = await readPem(tls.key, 'key');
  return material;
}

export function channelCredentials(material: ClientTlsMaterial): grpc.ChannelCredentials {
  return grpc.credentials.createSsl(material.ca ?? null, material.key ?? null, material.cert ?? null);
}
