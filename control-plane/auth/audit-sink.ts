/**
 * What the gate and the API guard tell the audit trail (control-plane/audit/
 * keeps it): defined here so that auth need not import the audit area.
 */

/** One audited call, before it is timestamped. Never a token, a credential or a job's env. */
export interface AuditRecord {
  /** The token id, the agent name, or 'anonymous'. */
  readonly actor: string;
  /** "JobService.Submit", as in the authorization table. */
  readonly method: string;
  /** The job, agent or token the call touched; '' when none or unknown. */
  readonly target: string;
  /** The caller's address, as gRPC reports it. */
  readonly from: string;
  /** 'OK' or the gRPC status name ('PERMISSION_DENIED'). */
  readonly result: string;
}

export interface AuditSink {
  /** Never blocks and never throws. */
  record(entry: AuditRecord): void;
}

/** The sink of a gate that audits nothing (tests that do not look at the trail). */
export const NO_AUDIT: AuditSink = { record: () => undefined };
