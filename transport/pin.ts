/**
 * Trust on first contact, pinned: an agent given the cluster CA's
 * fingerprint (from its join string) and no CA file fetches the server's
 * certificate chain once, without verifying it, keeps the certificate whose
 * SHA-256 (of its DER) is the fingerprint, and saves it as its CA file. From
 * then on TLS is verified normally against that file, host name included.
 * Nothing is ever trusted that does not match the pin: a mismatch is a
 * `PinMismatchError`, never a quiet fallback to an unverified connection.
 * This is kubeadm's `--discovery-token-ca-cert-hash`.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { connect, type DetailedPeerCertificate } from 'node:tls';
import type { Target } from './address.js';
import { PinMismatchError, TransportError } from './errors.js';

/** What a pin is: the CA's fingerprint, and where the agent keeps the CA once it has it. */
export interface CaPin {
  /** `sha256:` and 64 hex digits (colons and case are ignored). */
  fingerprint: string;
  /** The CA file written on first contact and read afterwards (e.g. `<work-dir>/ca.pem`). */
  file: string;
}

const PREFIX = 'sha256:';

/** `sha256:<hex>` of a certificate's DER: what join strings carry. */
export function fingerprintOf(der: Buffer): string {
  return PREFIX + createHash('sha256').update(der).digest('hex');
}

/** The canonical form of a fingerprint the operator typed, or a TransportError saying what is wrong. */
export function parseFingerprint(text: string): string {
  const hex = text
    .trim()
    .toLowerCase()
    .replace(/^sha256:/, '')
    .replaceAll(':', '');
  if (!/^[0-9a-f]{64}$/.test(hex))
    throw new TransportError(`invalid CA fingerprint "${text.slice(0, 80)}": expected sha256:<64 hex digits>`);
  return PREFIX + hex;
}

/** The first certificate of a PEM file's text, as DER. */
export function firstCertificateDer(pem: string): Buffer {
  return Buffer.from(new X509Certificate(pem).raw);
}

/**
 * The CA file for `pin`: the saved one if it matches, else the certificate
 * of `target`'s chain that matches, saved first. Throws PinMismatchError when
 * the saved file or the server's chain does not match, TransportError when
 * the server cannot be reached.
 */
export async function pinnedCaFile(target: Target, pin: CaPin, timeoutMs = 5_000): Promise<string> {
  const want = parseFingerprint(pin.fingerprint);
  // Only a file that is not there means "not pinned yet": a read that fails is an error, never a fresh start.
  const saved = await readFile(pin.file, 'utf8').catch((err: NodeJS.ErrnoException) =>
    err.code === 'ENOENT' ? undefined : Promise.reject(err),
  );
  if (saved !== undefined) {
    const have = fingerprintOf(firstCertificateDer(saved));
    if (have !== want) {
      throw new PinMismatchError(`${pin.file} holds a CA with fingerprint ${have}, not the pinned ${want}; remove it to pin the CA again`);
    }
    return pin.file;
  }
  const chain = await peerChain(target, timeoutMs);
  const match = chain.find((der) => fingerprintOf(der) === want);
  if (match === undefined) {
    throw new PinMismatchError(
      `the server at ${target.address} presented no certificate with the pinned CA fingerprint ${want} ` +
        `(it presented ${chain.map(fingerprintOf).join(', ') || 'none'}); refusing to connect`,
    );
  }
  const tmp = `${pin.file}.${process.pid}.tmp`;
  await writeFile(tmp, new X509Certificate(match).toString(), { mode: 0o644 });
  await rename(tmp, pin.file);
  return pin.file;
}

/** Every certificate the server sends, leaf first, as DER. Not verified: the pin decides. */
function peerChain(target: Target, timeoutMs: number): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: target.host,
      port: target.port,
      servername: isIP(target.host) ? undefined : target.host,
      rejectUnauthorized: false,
      ALPNProtocols: target.scheme === 'wss' ? ['http/1.1'] : ['h2'],
    });
    const timer = setTimeout(() => fail(new TransportError(`no TLS handshake with ${target.address} within ${timeoutMs} ms`)), timeoutMs);
    function fail(err: Error): void {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    }
    socket.once('error', (err) => fail(new TransportError(`cannot fetch the certificate chain of ${target.address}`, { cause: err })));
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      const chain = walk(socket.getPeerCertificate(true));
      socket.destroy();
      resolve(chain);
    });
  });
}

function walk(cert: DetailedPeerCertificate): Buffer[] {
  const out: Buffer[] = [];
  let at: DetailedPeerCertificate | undefined = cert;
  while (at?.raw !== undefined && !out.some((d) => d.equals(at!.raw))) {
    out.push(at.raw);
    at = at.issuerCertificate;
  }
  return out;
}
