/**
 * Handlers behind the gate: each client-facing method is wrapped once, naming
 * itself as in the authorization table, and its handler gets the principal.
 * A method that changes something (table.ts `mutates`) goes through
 * `auditedUnary`, which records exactly one audit entry per call, whatever
 * its result; a failed authentication is the gate's to record.
 */
import { status as Status, type Metadata, type sendUnaryData, type ServerUnaryCall, type ServerWritableStream } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { isUnauthenticated, mutates, type Gate, type Principal } from '../auth/index.js';
import { toServiceError, unary } from './status.js';

/** A unary handler that runs only for a caller the gate lets through. For methods that change nothing. */
export function guardedUnary<Req, Res>(
  gate: Gate,
  method: string,
  log: Logger,
  handler: (req: Req, who: Principal) => Promise<Res>,
): (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => void {
  if (mutates(method)) throw new Error(`${method} changes something: wrap it with auditedUnary`);
  return unary(log, async (req: Req, call: ServerUnaryCall<Req, Res>) =>
    handler(req, await gate.check(method, call.metadata, call.getPeer())),
  );
}

/**
 * What an audited call touched, for its entry: from the request, and the
 * answer when there is one. Never a token, a credential or a job's env.
 */
export type AuditTarget<Req, Res> = (req: Req, res: Res | undefined) => string;

/**
 * A unary handler for a method that changes something: gated like
 * guardedUnary, and recorded in the audit log once it ends. The handler also
 * gets the call's metadata (Submit reads the caller's trace context there).
 */
export function auditedUnary<Req, Res>(
  gate: Gate,
  method: string,
  log: Logger,
  handler: (req: Req, who: Principal, metadata: Metadata) => Promise<Res>,
  target: AuditTarget<Req, Res>,
): (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => void {
  if (!mutates(method)) throw new Error(`${method} changes nothing: wrap it with guardedUnary`);
  return (call, callback) => {
    const from = call.getPeer();
    let actor = 'anonymous';
    const run = async (): Promise<Res> => {
      const who = await gate.identify(method, call.metadata, from);
      actor = who.id;
      gate.authorize(method, who, from);
      return handler(call.request, who, call.metadata);
    };
    run().then(
      (res) => {
        gate.audit.record({ actor, method, target: safeTarget(target, call.request, res), from, result: 'OK' });
        callback(null, res);
      },
      (err: unknown) => {
        const refusal = toServiceError(err, log);
        // A failed authentication was recorded by the gate, with the reason it knows.
        if (!isUnauthenticated(err)) {
          const result = Status[refusal.code ?? Status.UNKNOWN] ?? String(refusal.code);
          gate.audit.record({ actor, method, target: safeTarget(target, call.request, undefined), from, result });
        }
        callback(refusal);
      },
    );
  };
}

/** A target that cannot be worked out (a malformed request) is recorded as ''; it never fails the call. */
function safeTarget<Req, Res>(target: AuditTarget<Req, Res>, req: Req, res: Res | undefined): string {
  try {
    return target(req, res).slice(0, 128);
  } catch {
    return '';
  }
}

/** A server-streaming handler that runs only for a caller the gate lets through; a refusal ends the call with its status. */
export function guardedStream<Req, Res>(
  gate: Gate,
  method: string,
  log: Logger,
  handler: (call: ServerWritableStream<Req, Res>, who: Principal) => void,
): (call: ServerWritableStream<Req, Res>) => void {
  return (call) => {
    gate.check(method, call.metadata, call.getPeer()).then(
      (who) => handler(call, who),
      (err: unknown) => call.emit('error', toServiceError(err, log)),
    );
  };
}
