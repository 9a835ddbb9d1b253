/**
 * Ordered fallback over a list of addresses, as an agent walks them when it
 * (re)connects: the address that worked last time first, then the configured
 * order. Never from an encrypted address to a plaintext network one unless
 * the operator allows it: a silent downgrade is how Jenkins' JEP-222 went
 * wrong. Unix sockets never cross the network, so they are not a downgrade.
 */
import type { Logger } from 'pino';
import { parseAddress, type Target } from './address.js';
import { loadClientTls, type ClientTlsFiles } from './credentials.js';
import { dial, type Dialer } from './dial.js';
import { DowngradeRefusedError, isPinMismatch, NoReachableAddressError, TransportError } from './errors.js';
import { pinnedCaFile, type CaPin } from './pin.js';
import { probe } from './probe.js';
import { diagnoseTls } from './tls-diagnosis.js';
import type { Env } from './proxy.js';

export interface FallbackOptions {
  /** PEM file paths for tcps and wss addresses. */
  tls?: ClientTlsFiles;
  /** Without a `tls.ca`: the CA is pinned by fingerprint and fetched on first contact (pin.ts). */
  pin?: CaPin;
  logger: Logger;
  /** Where proxy settings are read from. Default process.env. */
  env?: Env;
  /** Allow falling back from tcps/wss to tcp/ws. Default false (--allow-insecure-fallback). */
  allowDowngrade?: boolean;
  /** Deadline of each address's connectivity check. Default 3 s. */
  perAddressTimeoutMs?: number;
}

interface ResolvedOptions {
  tls: ClientTlsFiles | undefined;
  pin: CaPin | undefined;
  logger: Logger;
  env: Env;
  allowDowngrade: boolean;
  perAddressTimeoutMs: number;
}

const DEFAULT_PER_ADDRESS_TIMEOUT_MS = 3_000;

export class FallbackDialer {
  readonly #targets: readonly Target[];
  readonly #options: ResolvedOptions;
  #preferred: string | undefined;
  /** Tried last (see demote), until it is the one that works. */
  #demoted: string | undefined;

  /** Throws a TransportError naming the first unparseable address. */
  constructor(addresses: string[], options: FallbackOptions) {
    if (addresses.length === 0) throw new TransportError('no transport address given');
    this.#targets = addresses.map(parseAddress);
    this.#options = {
      tls: options.tls,
      pin: options.tls?.ca === undefined ? options.pin : undefined,
      logger: options.logger.child({ component: 'transport.fallback' }),
      env: options.env ?? process.env,
      allowDowngrade: options.allowDowngrade ?? false,
      perAddressTimeoutMs: options.perAddressTimeoutMs ?? DEFAULT_PER_ADDRESS_TIMEOUT_MS,
    };
  }

  /** Canonical addresses in the order next() tries them. */
  get order(): string[] {
    return this.#ordered().map((t) => t.address);
  }

  /**
   * Dials the first address that passes a connectivity check and remembers it.
   * Throws DowngradeRefusedError when only a refused plaintext fallback was left,
   * NoReachableAddressError when nothing answered, PinMismatchError at once when
   * a server does not hold the pinned CA, or the signal's reason.
   */
  async next(signal?: AbortSignal): Promise<Dialer & { address: string }> {
    const attempts: Array<{ address: string; error: Error }> = [];
    let failedEncrypted: Target | undefined;
    let refused: { from: string; to: string } | undefined;
    for (const target of this.#ordered()) {
      signal?.throwIfAborted();
      if (failedEncrypted !== undefined && isPlaintextNetwork(target) && !this.#options.allowDowngrade) {
        refused ??= { from: failedEncrypted.address, to: target.address };
        this.#options.logger.warn({ from: failedEncrypted.address, to: target.address }, 'insecure fallback refused');
        continue;
      }
      try {
        const dialer = await this.#attempt(target, signal);
        this.#preferred = target.address;
        if (this.#demoted === target.address) this.#demoted = undefined;
        return { ...dialer, address: target.address };
      } catch (err) {
        signal?.throwIfAborted();
        if (isPinMismatch(err)) throw err;
        attempts.push({ address: target.address, error: err instanceof Error ? err : new Error(String(err)) });
        if (target.encrypted) failedEncrypted ??= target;
      }
    }
    const unreachable = new NoReachableAddressError(attempts);
    if (refused !== undefined) throw new DowngradeRefusedError(refused.from, refused.to, { cause: unreachable });
    throw unreachable;
  }

  /** Records that `address` (any spelling of a listed address) worked; next() tries it first. */
  markGood(address: string): void {
    const canonical = parseAddress(address).address;
    if (!this.#targets.some((t) => t.address === canonical)) {
      throw new TransportError(`markGood: ${address} is not one of the fallback addresses`);
    }
    this.#preferred = canonical;
    if (this.#demoted === canonical) this.#demoted = undefined;
  }

  /**
   * `address`'s server dropped us or went silent: next() tries it last, so
   * another server takes us at once, until an address is marked good again.
   */
  demote(address: string): void {
    const canonical = parseAddress(address).address;
    if (this.#preferred === canonical) this.#preferred = undefined;
    this.#demoted = canonical;
  }

  #ordered(): Target[] {
    const rank = (t: Target): number => (t.address === this.#preferred ? 0 : t.address === this.#demoted ? 2 : 1);
    return [...this.#targets].sort((a, b) => rank(a) - rank(b));
  }

  async #attempt(target: Target, signal: AbortSignal | undefined): Promise<Dialer> {
    const { logger, env, perAddressTimeoutMs } = this.#options;
    const started = Date.now();
    const tls = await this.#tlsFor(target);
    const dialer = await dial(target, { tls, logger, env, signal });
    try {
      await probe(dialer, perAddressTimeoutMs, signal);
    } catch (err) {
      await dialer.close();
      const tlsError = target.encrypted
        ? await diagnoseTls(target.host, target.port, await loadClientTls(tls)).catch(() => undefined)
        : undefined;
      const failure = tlsError ? new TransportError(`TLS handshake with ${target.address} failed: ${tlsError}`, { cause: err }) : err;
      logger.warn({ address: target.address, err: failure, elapsed_ms: Date.now() - started }, 'transport address unreachable');
      throw failure;
    }
    logger.info({ address: target.address, elapsed_ms: Date.now() - started }, 'transport address reachable');
    return dialer;
  }

  /** The configured TLS files, with the pinned CA's file as `ca` for an encrypted target when a pin is set. */
  async #tlsFor(target: Target): Promise<ClientTlsFiles | undefined> {
    const { tls, pin } = this.#options;
    if (!target.encrypted || pin === undefined) return tls;
    return { ...tls, ca: await pinnedCaFile(target, pin) };
  }
}

function isPlaintextNetwork(target: Target): boolean {
  return !target.encrypted && target.scheme !== 'unix';
}
