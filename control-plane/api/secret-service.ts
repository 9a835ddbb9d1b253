/**
 * SecretService: set, list and delete a tenant's secrets, and re-encrypt
 * them all under the current key. Set takes a value and nothing gives one
 * back; the value never reaches a log line or the audit log (its entries
 * name the tenant and secret). Who may do what is the authorization table's
 * (secrets.write, secrets.list, secrets.rotate); the tenant is checked here,
 * as for jobs: a caller acts only in its tenants.
 */
import { status as Status, type Server } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import {
  SecretServiceService,
  type DeleteSecretRequest,
  type DeleteSecretResponse,
  type ListSecretsRequest,
  type ListSecretsResponse,
  type RotateSecretsKeyResponse,
  type SecretInfo,
  type SetSecretRequest,
  type SetSecretResponse,
} from '../../proto/gen/runmesh/v1/secret.js';
import { canSee, PermissionDeniedError, tenantFor, type Gate, type Principal } from '../auth/index.js';
import { Secret } from '../secret.js';
import {
  isNoSecretsKey,
  isSecretUnreadable,
  isTenantFull,
  SECRET_LIMITS,
  SECRET_NAME,
  type SecretMeta,
  type SecretStore,
} from '../secrets/index.js';
import { auditedUnary, guardedUnary } from './guard.js';
import type { HookStore } from '../hooks/hook-store.js';
import { ApiError, invalid } from './status.js';

export interface SecretServiceDeps {
  gate: Gate;
  secrets: SecretStore;
  /** Webhook secrets, sealed by the same key ring: re-sealed with the secrets by RotateSecretsKey. */
  hooks?: Pick<HookStore, 'reseal'>;
  logger: Logger;
}

export class SecretServiceImpl {
  constructor(private readonly d: SecretServiceDeps) {}

  addToServer(server: Server): void {
    const { gate, logger: log } = this.d;
    server.addService(SecretServiceService, {
      setSecret: auditedUnary(
        gate,
        'SecretService.SetSecret',
        log,
        (req: SetSecretRequest, who) => mapped(this.set(req, who)),
        (req, res: SetSecretResponse | undefined) => target(res?.info ?? req),
      ),
      listSecrets: guardedUnary(gate, 'SecretService.ListSecrets', log, (req: ListSecretsRequest, who) => mapped(this.list(req, who))),
      deleteSecret: auditedUnary(
        gate,
        'SecretService.DeleteSecret',
        log,
        (req: DeleteSecretRequest, who) => mapped(this.delete(req, who)),
        (req) => target(req),
      ),
      rotateSecretsKey: auditedUnary(
        gate,
        'SecretService.RotateSecretsKey',
        log,
        (_req, who) => mapped(this.rotate(who)),
        (_req, res: RotateSecretsKeyResponse | undefined) => (res ? `key ${res.keyId}` : ''),
      ),
    });
  }

  private async set(req: SetSecretRequest, who: Principal): Promise<SetSecretResponse> {
    const name = checkName(req.name);
    const tenant = tenantOf(who, req.tenant);
    // Wrapped at once: from here on the value prints as a placeholder.
    const value = new Secret(req.value);
    checkValue(value);
    const { meta, created } = await this.d.secrets.set(tenant, name, value, who.id);
    this.d.logger.info({ audit: true, tenant, secret: name, created, key_id: meta.keyId, by: who.id }, 'secret set');
    return { info: info(meta), created };
  }

  private async list(req: ListSecretsRequest, who: Principal): Promise<ListSecretsResponse> {
    if (req.tenant && !canSee(who, req.tenant))
      throw new PermissionDeniedError(`tenant: token ${who.name || who.id} may not act in tenant ${req.tenant.slice(0, 64)}`);
    const tenants = req.tenant ? [req.tenant] : who.tenants;
    return { secrets: (await this.d.secrets.list(tenants)).map(info) };
  }

  private async delete(req: DeleteSecretRequest, who: Principal): Promise<DeleteSecretResponse> {
    const name = checkName(req.name);
    const tenant = tenantOf(who, req.tenant);
    const deleted = await this.d.secrets.delete(tenant, name);
    this.d.logger.info({ audit: true, tenant, secret: name, deleted, by: who.id }, 'secret delete requested');
    return { deleted };
  }

  private async rotate(who: Principal): Promise<RotateSecretsKeyResponse> {
    const { reencrypted, total } = await this.d.secrets.reencrypt();
    const hooks = (await this.d.hooks?.reseal()) ?? { resealed: 0, total: 0 };
    const keyId = this.d.secrets.currentKeyId;
    this.d.logger.info(
      { audit: true, key_id: keyId, reencrypted, total, hooks_resealed: hooks.resealed, hooks_total: hooks.total, by: who.id },
      'secrets and webhook secrets re-encrypted under the current key',
    );
    return { keyId, reencrypted, total, hooksResealed: hooks.resealed, hooksTotal: hooks.total };
  }
}

function checkName(name: string): string {
  if (!name) throw invalid('name', 'missing');
  if (!SECRET_NAME.test(name))
    throw invalid('name', `bad secret name "${name.slice(0, 64)}": letters, digits and _, not starting with a digit, at most 128`);
  return name;
}

function checkValue(value: Secret): void {
  const text = value.reveal();
  if (text === '') throw invalid('value', 'empty');
  const size = Buffer.byteLength(text, 'utf8');
  if (size > SECRET_LIMITS.valueBytes) throw invalid('value', `too large (${size} bytes, limit ${SECRET_LIMITS.valueBytes})`);
  if (text.includes('\0')) throw invalid('value', 'contains a NUL byte, which no environment variable can hold');
}

function tenantOf(who: Principal, requested: string): string {
  const t = tenantFor(who, requested, 'tenant');
  if (typeof t !== 'string') throw invalid('tenant', t.pick);
  return t;
}

/** The audit entry's target: tenant/name, from the request (never its value). */
const target = (req: { tenant: string; name: string }): string => `secret ${req.tenant || '(default)'}/${req.name}`;

function info(m: SecretMeta): SecretInfo {
  return { name: m.name, tenant: m.tenant, keyId: m.keyId, createdAt: m.createdAt, updatedAt: m.updatedAt, updatedBy: m.updatedBy };
}

/** The secrets area's refusals as statuses; the rest is toServiceError's. */
async function mapped<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (err) {
    if (isNoSecretsKey(err) || isSecretUnreadable(err)) throw new ApiError(Status.FAILED_PRECONDITION, (err as Error).message);
    if (isTenantFull(err)) throw new ApiError(Status.RESOURCE_EXHAUSTED, (err as Error).message);
    throw err;
  }
}
