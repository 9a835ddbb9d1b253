/**
 * The grammar of secret names and of a job's secret references, shared by the
 * SecretService, submit validation and the CLI.
 */

/** Letters, digits and _, not starting with a digit, at most 128: `--secret NAME` is an environment variable as it is. */
export const SECRET_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
/** The same grammar as job tenants (jobs/validate.ts) and token tenants. */
export const TENANT = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

export const SECRET_LIMITS = {
  /** A value, UTF-8 bytes. */
  valueBytes: 64 * 1024,
  /** Secrets one tenant may hold. */
  perTenant: 1000,
  /** References one job may carry. */
  refsPerJob: 64,
  /** A file secret's path, characters. */
  pathChars: 256,
} as const;

/** Environment variables a secret may not set: the agent's own. */
export const RESERVED_ENV_PREFIX = 'RUNMESH_';
