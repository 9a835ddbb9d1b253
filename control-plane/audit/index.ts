/**
 * control-plane/audit/: the audit log (audit-log.ts: recorded by the API
 * guard and the gate, stored in batches under /runmesh/audit/, listed by
 * AuditService) and its retention (retention.ts, run by the leader).
 */
export { AuditLog, AUDIT_PREFIX, type AuditEntry, type AuditPage, type AuditQuery, type AuditLogOptions } from './audit-log.js';
export { AuditRetention, type AuditRetentionDeps } from './retention.js';
