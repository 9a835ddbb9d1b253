/**
 * etcd's own authentication (`--etcd-user`, `--etcd-password-file`): one
 * token for both of our connections, got with etcd's Authenticate call and
 * sent as `token` metadata. etcd forgets a token when it expires (after
 * `--auth-token-ttl` unused, 5 minutes by default, or a JWT's lifetime) and
 * when it restarts (simple tokens live in its memory); a call refused for its
 * token drops it, and the next call authenticates again.
 *
 * etcd3's client authenticates on its own only through an `auth` option whose
 * token call cannot carry our `--etcd-server-name`; so this class also takes
 * the place of etcd3's Authenticator (`useWith`), which its client asks for
 * metadata before every call and tells when etcd refused a token.
 */
import { Metadata, status as GrpcStatus } from '@grpc/grpc-js';
import type { Etcd3 } from 'etcd3';
import type { Secret } from '../secret.js';
import { EtcdAuthError } from './errors.js';

export interface EtcdUser {
  name: string;
  password: Secret;
}

/** Asks etcd for a token (etcd-rpc.ts's raw Authenticate call). */
export type Authenticate = (name: string, password: string) => Promise<string>;

export class EtcdAuth {
  private token: Promise<string> | undefined;

  constructor(
    private readonly user: EtcdUser,
    private readonly authenticate: Authenticate,
  ) {}

  /** The current token, authenticating first when there is none. */
  current(): Promise<string> {
    if (this.token) return this.token;
    const fresh = this.authenticate(this.user.name, this.user.password.reveal()).catch((err: unknown) => {
      if (this.token === fresh) this.token = undefined;
      throw explainRefusal(err, this.user.name);
    });
    this.token = fresh;
    return fresh;
  }

  /** etcd refused `token`: forget it, unless a newer one has replaced it already. */
  async invalidate(token: string): Promise<void> {
    const held = this.token;
    if (held && (await held.catch(() => undefined)) === token && this.token === held) this.token = undefined;
  }

  /** Drops the token whichever it is (a refusal that does not say which token it saw). */
  forget(): void {
    this.token = undefined;
  }

  /** Puts this token source in place of etcd3's own, so both clients share it (see the header). */
  useWith(client: Etcd3): void {
    const pool = (client as unknown as { pool?: { authenticator?: unknown } }).pool;
    if (!pool || !('authenticator' in pool))
      throw new Error('etcd3 has no connection pool authenticator to replace (changed etcd3 version?)');
    pool.authenticator = {
      getMetadata: async (): Promise<Metadata> => tokenMetadata(await this.current()),
      invalidateMetadata: (): void => this.forget(),
    };
  }
}

export function tokenMetadata(token: string): Metadata {
  const md = new Metadata();
  md.set('token', token);
  return md;
}

/**
 * A refusal a new token cures: etcd forgot ours (expired, restarted), or its
 * auth store changed since we got it. etcd says so only in its message.
 */
export function isStaleToken(err: unknown): boolean {
  if ((err as { code?: unknown } | undefined)?.code === GrpcStatus.UNAUTHENTICATED) return true;
  return /auth store is old|invalid auth token/.test(errorText(err));
}

/** What etcd said: a gRPC error's details, else the message. */
function errorText(err: unknown): string {
  const e = err as { details?: unknown; message?: unknown } | undefined;
  if (typeof e?.details === 'string' && e.details) return e.details;
  return typeof e?.message === 'string' ? e.message : '';
}

/** etcd's answer to Authenticate, or to a call without a token, as an EtcdAuthError naming the flag to fix; else `err`. */
export function explainRefusal(err: unknown, user: string | undefined): unknown {
  const text = errorText(err);
  if (/authentication failed/.test(text))
    return new EtcdAuthError(`etcd refused user "${user}": wrong password (--etcd-password-file) or no such user (--etcd-user)`, {
      cause: err,
    });
  if (/authentication is not enabled/.test(text))
    return new EtcdAuthError('etcd has authentication turned off: drop --etcd-user and --etcd-password-file, or enable it', { cause: err });
  if (/user name is empty|user name not found/.test(text))
    return new EtcdAuthError('etcd requires a user: give --etcd-user and --etcd-password-file', { cause: err });
  if (/permission denied/.test(text))
    return new EtcdAuthError(
      `etcd user ${user ? `"${user}"` : '(none)'} may not use runmesh's keys: grant its role readwrite on the prefix /runmesh/`,
      {
        cause: err,
      },
    );
  return err;
}
