/**
 * Handlers behind the gate: each client-facing method is wrapped once, naming
 * itself as in the authorization table, and its handler gets the principal.
 */
import type { sendUnaryData, ServerUnaryCall, ServerWritableStream } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { Gate, Principal } from '../auth/index.js';
import { toServiceError, unary } from './status.js';

/** A unary handler that runs only for a caller the gate lets through. */
export function guardedUnary<Req, Res>(
  gate: Gate,
  method: string,
  log: Logger,
  handler: (req: Req, who: Principal) => Promise<Res>,
): (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => void {
  return unary(log, async (req: Req, call: ServerUnaryCall<Req, Res>) => handler(req, gate.check(method, call.metadata, call.getPeer())));
}

/** A server-streaming handler that runs only for a caller the gate lets through; a refusal ends the call with its status. */
export function guardedStream<Req, Res>(
  gate: Gate,
  method: string,
  log: Logger,
  handler: (call: ServerWritableStream<Req, Res>, who: Principal) => void,
): (call: ServerWritableStream<Req, Res>) => void {
  return (call) => {
    let who: Principal;
    try {
      who = gate.check(method, call.metadata, call.getPeer());
    } catch (err) {
      call.emit('error', toServiceError(err, log));
      return;
    }
    handler(call, who);
  };
}
