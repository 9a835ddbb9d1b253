/**
 * Minting the cluster's certificates. Node 20's crypto reads X.509 but cannot
 * build it, so the certificates are assembled and signed with node-forge; the
 * keys are made by Node's own crypto (RSA 2048, native and fast) and handed
 * to forge as PEM. RSA rather than ECDSA because forge signs with RSA only,
 * and every TLS stack speaks it.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import forge from 'node-forge';

/** A certificate and its private key, both PEM. */
export interface KeyedCertificate {
  cert: string;
  key: string;
}

/** The CA lives ten years: replacing it means re-pinning every agent. */
const CA_DAYS = 3650;
/** A server certificate is minted at every start; a year covers a peer that never restarts. */
const SERVER_DAYS = 365;
/** Validity starts a little in the past, for hosts whose clocks run slow. */
const BACKDATE_MS = 60 * 60_000;

export function createCa(commonName: string): KeyedCertificate {
  const keys = newKeyPair();
  const cert = baseCertificate(keys.publicKey, CA_DAYS);
  const subject = [{ name: 'commonName', value: commonName }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(keys.privateKey, forge.md.sha256.create());
  return pems(cert, keys.privateKey);
}

/** What a server certificate is valid for. */
export interface ServerNames {
  dns: string[];
  ips: string[];
}

/** A server (and client) certificate for `names`, signed by `ca`, valid for a year or until `notAfter`. */
export function issueServerCertificate(ca: KeyedCertificate, commonName: string, names: ServerNames, notAfter?: Date): KeyedCertificate {
  const caCert = forge.pki.certificateFromPem(ca.cert);
  const caKey = forge.pki.privateKeyFromPem(ca.key);
  const keys = newKeyPair();
  const cert = baseCertificate(keys.publicKey, SERVER_DAYS);
  if (notAfter) cert.validity.notAfter = notAfter;
  cert.setSubject([{ name: 'commonName', value: commonName }]);
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true, clientAuth: true },
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
    {
      name: 'subjectAltName',
      altNames: [...names.dns.map((value) => ({ type: 2, value })), ...names.ips.map((ip) => ({ type: 7, ip }))],
    },
  ]);
  cert.sign(caKey, forge.md.sha256.create());
  return pems(cert, keys.privateKey);
}

/** PEM with Unix line ends (forge writes CRLF), as every other tool writes it. */
function pems(cert: forge.pki.Certificate, key: forge.pki.PrivateKey): KeyedCertificate {
  const unix = (pem: string): string => pem.replace(/\r\n/g, '\n');
  return { cert: unix(forge.pki.certificateToPem(cert)), key: unix(forge.pki.privateKeyToPem(key)) };
}

function newKeyPair(): forge.pki.rsa.KeyPair {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    publicKey: forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }).toString()),
    privateKey: forge.pki.privateKeyFromPem(privateKey.export({ type: 'pkcs1', format: 'pem' }).toString()),
  };
}

function baseCertificate(publicKey: forge.pki.PublicKey, days: number): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  // A positive 128-bit serial: the high bit cleared so DER does not read it as negative.
  const serial = randomBytes(16);
  serial[0] = (serial[0] ?? 0) & 0x7f;
  cert.serialNumber = serial.toString('hex');
  const now = Date.now();
  cert.validity.notBefore = new Date(now - BACKDATE_MS);
  cert.validity.notAfter = new Date(now + days * 24 * 3600_000);
  return cert;
}
