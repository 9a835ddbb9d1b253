/**
 * Why a TLS connection fails, in words: gRPC reports only "connection
 * failed", so after a failed probe of an encrypted address we try the
 * handshake ourselves with the same material and keep what Node says
 * (an untrusted certificate, a certificate the server requires, …).
 */
import { connect } from 'node:tls';
import { isIP } from 'node:net';
import type { ClientTlsMaterial } from './credentials.js';

/** Resolves with the TLS error's message, or undefined when the handshake looks fine. */
export function diagnoseTls(host: string, port: number, material: ClientTlsMaterial, timeoutMs = 2000): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, ...material, servername: isIP(host) ? undefined : host, ALPNProtocols: ['h2'] });
    const finish = (why: string | undefined): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(why);
    };
    const timer = setTimeout(() => finish(undefined), timeoutMs);
    socket.once('error', (err: Error) => finish(err.message));
    // TLS 1.3 servers refuse a missing client certificate after the handshake: give the alert time to arrive.
    socket.once('secureConnect', () => setTimeout(() => finish(undefined), 300));
  });
}
