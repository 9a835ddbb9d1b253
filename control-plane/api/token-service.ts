/**
 * TokenService: admins create, list and revoke API tokens. A token is shown
 * once, in CreateToken's answer; nothing returns it again, and no log line
 * holds it. A token of role agent is a join token: it enrols `uses` agents
 * (default 1, at most 1000), expires (default 30 minutes; it cannot be made
 * to never expire) and gives its agents its labels. Under `--tls-auto` a join
 * token comes with the cluster CA's fingerprint, for the agent to pin.
 */
import type { Server } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import {
  TokenServiceService,
  type CreateTokenRequest,
  type CreateTokenResponse,
  type ListTokensResponse,
  type RevokeTokenRequest,
  type RevokeTokenResponse,
  type TokenInfo,
} from '../../proto/gen/runmesh/v1/token.js';
import { isReservedLabel, RESERVED_LABEL_PREFIX } from '../../proto/executor-labels.js';
import { isTokenRole, TOKEN_ROLES, type Gate, type Principal, type TokenRecord, type TokenStore } from '../auth/index.js';
import { auditedUnary, guardedUnary } from './guard.js';
import { invalid } from './status.js';

export interface TokenServiceDeps {
  gate: Gate;
  tokens: TokenStore;
  logger: Logger;
  /** `--tls-auto`: the cluster CA's fingerprint, returned with every join token so agents can pin it; '' otherwise. */
  caFingerprint: string;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,62}$/;
const TENANT = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const MAX_TENANTS = 64;
/** Ten years: a TTL past that is a typo. */
const MAX_TTL_SECONDS = 10 * 365 * 24 * 3600;
/** Join tokens: how long one lives when no TTL is given, and at most. */
const JOIN_TTL_SECONDS = 30 * 60;
const MAX_JOIN_TTL_SECONDS = 30 * 24 * 3600;
const MAX_JOIN_USES = 1000;
const MAX_LABELS = 32;
const LABEL_KEY = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$/;
const LABEL_VALUE = /^[A-Za-z0-9._-]{0,63}$/;

export class TokenServiceImpl {
  constructor(private readonly d: TokenServiceDeps) {}

  addToServer(server: Server): void {
    const { gate, logger: log } = this.d;
    server.addService(TokenServiceService, {
      createToken: auditedUnary(
        gate,
        'TokenService.CreateToken',
        log,
        (req: CreateTokenRequest, who) => this.create(req, who),
        (_req, res: CreateTokenResponse | undefined) => res?.info?.id ?? '',
      ),
      listTokens: guardedUnary(gate, 'TokenService.ListTokens', log, async () => this.list()),
      revokeToken: auditedUnary(
        gate,
        'TokenService.RevokeToken',
        log,
        (req: RevokeTokenRequest, who) => this.revoke(req, who),
        (req) => tokenIdOf(req.id),
      ),
    });
  }

  private async create(req: CreateTokenRequest, who: Principal): Promise<CreateTokenResponse> {
    if (!isTokenRole(req.role)) throw invalid('role', `"${req.role.slice(0, 32)}" is not one of ${TOKEN_ROLES.join(', ')}`);
    if (req.name && !NAME.test(req.name)) throw invalid('name', `bad token name "${req.name.slice(0, 64)}"`);
    if (req.tenants.length > MAX_TENANTS) throw invalid('tenants', `${req.tenants.length} tenants exceed the limit of ${MAX_TENANTS}`);
    const bad = req.tenants.find((t) => !TENANT.test(t));
    if (bad !== undefined) throw invalid('tenants', `bad tenant name "${bad.slice(0, 64)}"`);
    if (req.role === 'admin' && req.tenants.length > 0) throw invalid('tenants', 'an admin token acts in every tenant; give none');
    if (req.role !== 'admin' && req.role !== 'agent' && req.tenants.length === 0)
      throw invalid('tenants', `a ${req.role} token needs at least one tenant`);
    if (req.ttlSeconds > MAX_TTL_SECONDS) throw invalid('ttl_seconds', `${req.ttlSeconds}s exceeds the limit of ${MAX_TTL_SECONDS}s`);
    const join = req.role === 'agent' ? joinOptions(req) : notJoin(req);
    const { token, record } = await this.d.tokens.create({
      name: req.name || `${req.role}-token`,
      role: req.role,
      tenants: [...new Set(req.tenants)],
      ...join,
    });
    this.d.logger.info(
      { audit: true, token_id: record.id, role: record.role, tenants: record.tenants, uses: record.usesLeft, by: who.id },
      'token created',
    );
    return { info: info(record), token, caFingerprint: record.role === 'agent' ? this.d.caFingerprint : '' };
  }

  private list(): ListTokensResponse {
    return { tokens: this.d.tokens.list().map(info) };
  }

  private async revoke(req: RevokeTokenRequest, who: Principal): Promise<RevokeTokenResponse> {
    if (!req.id) throw invalid('id', 'missing');
    const revoked = await this.d.tokens.revoke(req.id);
    this.d.logger.info({ audit: true, token_id: req.id.slice(0, 32), revoked, by: who.id }, 'token revoke requested');
    return { revoked };
  }
}

/** A token id as the audit log may hold it: someone who pastes a whole token as the id must not leave its secret there. */
const TOKEN_ID = /^[0-9a-f]{16}$/;
function tokenIdOf(id: string): string {
  if (TOKEN_ID.test(id)) return id;
  const embedded = /^rmt_([0-9a-f]{16})_/.exec(id);
  return embedded ? embedded[1]! : '(not a token id)';
}

/** A join token's uses, TTL and labels, checked, with their defaults. */
function joinOptions(req: CreateTokenRequest): { ttlMs: number; uses: number; labels: Record<string, string> } {
  const { uses, labels: given } = req.join ?? { uses: 0, labels: {} };
  if (uses > MAX_JOIN_USES) throw invalid('join.uses', `${uses} exceeds the limit of ${MAX_JOIN_USES}`);
  if (req.ttlSeconds > MAX_JOIN_TTL_SECONDS)
    throw invalid(
      'ttl_seconds',
      `a join token lives at most ${MAX_JOIN_TTL_SECONDS}s; for a fleet that needs longer, use the server's --join-token`,
    );
  const labels = Object.entries(given);
  if (labels.length > MAX_LABELS) throw invalid('join.labels', `${labels.length} labels exceed the limit of ${MAX_LABELS}`);
  const badKey = labels.find(([k]) => !LABEL_KEY.test(k));
  if (badKey) throw invalid('join.labels', `bad label key "${badKey[0].slice(0, 64)}"`);
  const reserved = labels.find(([k]) => isReservedLabel(k));
  if (reserved)
    throw invalid(
      'join.labels',
      `label key "${reserved[0]}" is reserved: keys under ${RESERVED_LABEL_PREFIX} are what agents report of themselves`,
    );
  const badValue = labels.find(([, v]) => !LABEL_VALUE.test(v));
  if (badValue) throw invalid('join.labels', `bad value for label ${badValue[0]}: "${badValue[1].slice(0, 64)}"`);
  return { ttlMs: (req.ttlSeconds || JOIN_TTL_SECONDS) * 1000, uses: uses || 1, labels: given };
}

function notJoin(req: CreateTokenRequest): { ttlMs: number } {
  if (req.join) throw invalid('join', `only a join token (role agent) has uses and labels; a ${req.role} token has none`);
  return { ttlMs: req.ttlSeconds * 1000 };
}

function info(r: TokenRecord): TokenInfo {
  return {
    id: r.id,
    name: r.name,
    role: r.role,
    tenants: r.tenants,
    createdAt: r.createdAt,
    expiresAt: r.expiresAt,
    usesLeft: r.usesLeft,
    labels: r.labels,
  };
}
