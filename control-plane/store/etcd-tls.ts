/**
 * TLS to etcd (`etcds://`): the credentials both of our connections use
 * (etcd3's client, which carries leases and watches, and the hot-path channel
 * of etcd-rpc.ts), the start-up diagnosis that turns a failed handshake into a
 * message naming its cause, and the client certificate's expiry.
 *
 * gRPC reports every failed handshake as UNAVAILABLE with the TLS error deep
 * in its details, and retries it as if etcd were down; so when the first call
 * fails, one plain TLS connection to each endpoint tells the causes apart.
 */
import { X509Certificate } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import { credentials, type ChannelCredentials, type ChannelOptions } from '@grpc/grpc-js';
import { EtcdTlsError } from './errors.js';

export interface EtcdTls {
  /** PEM of the CA that signs etcd's certificate (`--etcd-ca`); undefined: the system's roots. */
  ca: Buffer | undefined;
  /** Client certificate (`--etcd-cert`) and its key (`--etcd-key`), PEM, for etcd's `--client-cert-auth`; both or neither. */
  cert: Buffer | undefined;
  key: Buffer | undefined;
  /** The name etcd's certificate must carry when it differs from the endpoints' hosts (`--etcd-server-name`); '' the host. */
  serverName: string;
}

/** Throws EtcdTlsError when the files do not make a TLS context: a PEM that is not one, a key that does not fit the certificate. */
export function checkTlsFiles(t: EtcdTls): void {
  if (!t.cert !== !t.key) throw new EtcdTlsError('--etcd-cert and --etcd-key go together');
  try {
    tls.createSecureContext({ ca: t.ca, cert: t.cert, key: t.key });
  } catch (err) {
    throw new EtcdTlsError(`unusable --etcd-ca, --etcd-cert or --etcd-key: ${(err as Error).message}`, { cause: err });
  }
}

/** The system's roots, for an etcd whose certificate a public CA signed (gRPC needs them spelled out beside a client key). */
const systemRoots = (): Buffer => Buffer.from(tls.rootCertificates.join('\n'));

export function tlsCredentials(t: EtcdTls): ChannelCredentials {
  return credentials.createSsl(t.ca ?? systemRoots(), t.key ?? null, t.cert ?? null);
}

/** The channel options TLS adds: the name to verify etcd's certificate against. */
export function tlsChannelOptions(t: EtcdTls | undefined): ChannelOptions {
  return t?.serverName ? { 'grpc.ssl_target_name_override': t.serverName, 'grpc.default_authority': t.serverName } : {};
}

/** The same, in etcd3's option shape. */
export function etcd3Credentials(t: EtcdTls): { rootCertificate: Buffer; privateKey?: Buffer; certChain?: Buffer } {
  return { rootCertificate: t.ca ?? systemRoots(), ...(t.key && t.cert ? { privateKey: t.key, certChain: t.cert } : {}) };
}

/** When the client certificate stops being valid; undefined without one. Throws EtcdTlsError for one that is unreadable or already expired. */
export function clientCertificateExpiry(t: EtcdTls, now = Date.now()): Date | undefined {
  if (!t.cert) return undefined;
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(t.cert);
  } catch (err) {
    throw new EtcdTlsError('--etcd-cert is not a PEM certificate', { cause: err });
  }
  const notAfter = new Date(cert.validTo);
  if (notAfter.getTime() <= now) throw new EtcdTlsError(`the etcd client certificate (--etcd-cert) expired at ${notAfter.toISOString()}`);
  return notAfter;
}

/** setTimeout's longest wait; a later expiry is waited for in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Calls `expired` once `notAfter` has passed; returns a cancel. */
export function onExpiry(notAfter: Date, expired: () => void): () => void {
  let timer: NodeJS.Timeout;
  const arm = (): void => {
    const left = notAfter.getTime() - Date.now();
    if (left <= 0) return expired();
    timer = setTimeout(arm, Math.min(left, MAX_TIMER_MS));
    timer.unref();
  };
  arm();
  return () => clearTimeout(timer);
}

/**
 * Why a TLS connection to one of `endpoints` fails, as an EtcdTlsError naming
 * the flag to fix; undefined when the handshakes succeed or no endpoint
 * answers at all (then etcd is down, not misconfigured).
 */
export async function diagnoseTls(endpoints: readonly string[], t: EtcdTls, timeoutMs = 3_000): Promise<EtcdTlsError | undefined> {
  for (const endpoint of endpoints) {
    const failure = await handshake(endpoint, t, timeoutMs);
    if (failure === 'unreachable') continue;
    return failure && explain(endpoint, failure, t);
  }
  return undefined;
}

/**
 * One TLS connection as gRPC would make it. A refused client certificate
 * shows only after the handshake (TLS 1.3: etcd's alert follows the client's
 * Finished), so success is etcd's first HTTP/2 frame, sent once it accepted us.
 */
function handshake(endpoint: string, t: EtcdTls, timeoutMs: number): Promise<NodeJS.ErrnoException | 'unreachable' | undefined> {
  const url = new URL(endpoint);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  return new Promise((resolve) => {
    const socket = tls.connect({
      host,
      port: Number(url.port),
      ca: t.ca,
      cert: t.cert,
      key: t.key,
      servername: t.serverName || (net.isIP(host) ? undefined : host),
      checkServerIdentity: (_host, cert) => tls.checkServerIdentity(t.serverName || host, cert),
      ALPNProtocols: ['h2'],
    });
    const done = (outcome: NodeJS.ErrnoException | 'unreachable' | undefined): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(outcome);
    };
    const timer = setTimeout(() => done('unreachable'), timeoutMs);
    socket.once('secureConnect', () => socket.write(HTTP2_PREFACE));
    socket.once('data', () => done(undefined));
    socket.once('error', (err: NodeJS.ErrnoException) => done(UNREACHABLE.has(err.code ?? '') ? 'unreachable' : err));
    socket.once('close', () => done(new Error('etcd closed the connection during the TLS handshake')));
  });
}

/** The client connection preface and an empty SETTINGS frame: etcd answers with its own SETTINGS. */
const HTTP2_PREFACE = Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])]);

const UNREACHABLE = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN']);

/** Node's verification codes for a chain no trusted CA signed. */
const UNTRUSTED = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_GET_ISSUER_CERT',
  'CERT_SIGNATURE_FAILURE',
]);

function explain(endpoint: string, err: NodeJS.ErrnoException, t: EtcdTls): EtcdTlsError {
  const code = err.code ?? '';
  const at = `etcd at ${endpoint}`;
  const because = (why: string): EtcdTlsError => new EtcdTlsError(`${at}: ${why}`, { cause: err });
  if (UNTRUSTED.has(code))
    return because(`its certificate is not signed by ${t.ca ? 'the CA in --etcd-ca' : 'a CA this host trusts (give --etcd-ca)'}`);
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID')
    return because(
      `its certificate does not name ${t.serverName ? `"${t.serverName}"` : 'this address'} (${err.message}); --etcd-server-name gives the name to expect`,
    );
  if (code === 'CERT_HAS_EXPIRED') return because("its server certificate has expired; etcd's certificate must be renewed");
  if (code === 'CERT_NOT_YET_VALID') return because("its server certificate is not valid yet (check this host's clock)");
  if (code === 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED' || (!t.cert && /alert/i.test(code)))
    return because('etcd requires a client certificate: give --etcd-cert and --etcd-key');
  if (code === 'ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED') return because('etcd refused the client certificate (--etcd-cert) as expired');
  if (/ALERT_(BAD_CERTIFICATE|UNKNOWN_CA|CERTIFICATE_UNKNOWN|UNSUPPORTED_CERTIFICATE|ACCESS_DENIED)/.test(code))
    return because(
      "etcd refused the client certificate (--etcd-cert): it is not signed by a CA etcd's --trusted-ca-file holds, or has expired",
    );
  if (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || code === 'ERR_SSL_PACKET_LENGTH_TOO_LONG')
    return because('etcd does not speak TLS there; use etcd:// for a plaintext etcd');
  if (/KEY_VALUES_MISMATCH|ERR_OSSL/.test(code)) return because(`--etcd-key does not fit --etcd-cert (${err.message})`);
  return because(`TLS failed: ${err.message}`);
}
