/**
 * Errors of the `runmesh` command, and the one place that turns any error into
 * the single `runmesh: <message>` line and exit code an operator sees.
 * Match with the `isX` guards, never on message text.
 */
import { status as GrpcStatus } from '@grpc/grpc-js';
import { NamedError, findCause, hasCause } from '../proto/cause.js';
import { isRetryableCode } from '../transport/retry.js';

/** Base of every error the CLI raises on purpose (exit code 1 unless a subclass says otherwise). */
export class CliError extends NamedError {
  readonly exitCode: number = 1;
}

/** The command line itself is wrong: bad flag value, missing command. Exit code 2. */
export class UsageError extends CliError {
  override readonly exitCode = 2;
}

/** A gRPC call failed; the message is chosen from the status code by {@link rpcMessage}. */
export class RpcError extends CliError {
  constructor(
    readonly code: GrpcStatus,
    readonly details: string,
    readonly server: string,
    readonly method: string,
    options?: ErrorOptions,
  ) {
    super(rpcMessage(code, details, server, method), options);
  }
}

/**
 * A waited-for job ended without success. `exitCode` is what the command exits
 * with; `report` is the stderr line, absent when the job's own exit code says it all.
 */
export class JobOutcomeError extends CliError {
  constructor(
    readonly jobId: string,
    override readonly exitCode: number,
    readonly report: string | undefined,
  ) {
    super(report ?? `job ${jobId} exited with code ${exitCode}`);
  }
}

export const isUsage = (err: unknown): boolean => hasCause(err, UsageError);

/** True when `err` (or its cause) is a failed call whose status a retry may cure (the codes are transport/retry.ts's). */
export function isRetryable(err: unknown): boolean {
  const rpc = findCause(err, RpcError);
  return rpc !== undefined && isRetryableCode(rpc.code);
}

/** What grpc-js says when it never reached a server (as opposed to a server answering UNAVAILABLE with its reason). */
const NO_CONNECTION =
  /No connection established|Connection dropped|connect ECONNREFUSED|ENOENT|Name resolution failed|DNS resolution failed|failed to connect|Failed to connect/i;

/** The gRPC status → operator message mapping; the server's details text is kept where it says more. */
export function rpcMessage(code: GrpcStatus, details: string, server: string, method: string): string {
  const said = details.trim();
  switch (code) {
    case GrpcStatus.UNAVAILABLE:
      // The server's own reason (a log held by a peer that is down, the store unreachable) says more than "cannot reach".
      if (said && !NO_CONNECTION.test(said)) return `the control plane at ${server} could not answer: ${said} (UNAVAILABLE; try again)`;
      return `cannot reach the control plane at ${server} (is \`runmesh server\` or \`runmesh dev\` running?)`;
    case GrpcStatus.DEADLINE_EXCEEDED:
      return `the control plane at ${server} did not answer in time (${method})`;
    case GrpcStatus.NOT_FOUND:
      return said || 'not found';
    case GrpcStatus.INVALID_ARGUMENT:
      return `invalid request: ${said || 'rejected by the server'}`;
    case GrpcStatus.UNAUTHENTICATED:
      return `not authenticated: ${said || 'the control plane asks for credentials'}`;
    case GrpcStatus.PERMISSION_DENIED:
      return `permission denied: ${said || method}`;
    case GrpcStatus.RESOURCE_EXHAUSTED:
      return `rate limited: ${said || 'try again later'}`;
    case GrpcStatus.UNIMPLEMENTED:
      return `the control plane at ${server} does not implement ${method} (version mismatch?)`;
    default:
      return said ? `${said} (${GrpcStatus[code] ?? code})` : `${method} failed: ${GrpcStatus[code] ?? code}`;
  }
}

/** What the process prints and exits with for an error that reached the top. */
export interface ErrorReport {
  exitCode: number;
  /** The one stderr line (without the `runmesh: ` prefix); undefined prints nothing. */
  line: string | undefined;
}

/** Turns any thrown value into an {@link ErrorReport}. Unknown errors are bugs: exit 1, message only. */
const OPERATIONAL = new Set([
  'TransportError',
  'InvalidAddressError',
  'AddressInUseError',
  'DowngradeRefusedError',
  'NoReachableAddressError',
  'StoreError',
  'StoreUnavailableError',
  'EtcdTlsError',
  'EtcdAuthError',
  'DataDirInUseError',
  'InvalidExecutorOptionError',
  'TracingConfigError',
]);

export function reportFor(err: unknown): ErrorReport {
  const outcome = findCause(err, JobOutcomeError);
  if (outcome) return { exitCode: outcome.exitCode, line: outcome.report };
  const cli = findCause(err, CliError);
  if (cli) return { exitCode: cli.exitCode, line: oneLine(cli.message) };
  // Errors our own layers raise on purpose (bad address, store unreachable) already read as one clear line.
  if (err instanceof Error && OPERATIONAL.has(err.name)) return { exitCode: 1, line: oneLine(err.message) };
  const message = err instanceof Error ? err.message : String(err);
  return { exitCode: 1, line: `internal error: ${oneLine(message)}` };
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}
