/**
 * A join string: the join token, and, from a server started with
 * `--tls-auto`, the cluster CA's fingerprint after an `@`:
 * `rmt_<id>_<secret>@sha256:<64 hex>`. One value to paste (or to put in
 * RUNMESH_JOIN_TOKEN) carries both the secret that enrols the agent and the
 * pin that tells it which server to trust. `@` occurs in no token runmesh
 * makes (base64url and `_`), so the split is unambiguous; a string without
 * the suffix is a plain token, as before.
 */
const SUFFIX = /@(sha256:[0-9a-fA-F:]+)$/;

export interface JoinString {
  token: string;
  /** `sha256:<hex>`, or '' when the string carries no pin. */
  fingerprint: string;
}

export function parseJoinString(text: string): JoinString {
  const m = SUFFIX.exec(text);
  if (!m) return { token: text, fingerprint: '' };
  return { token: text.slice(0, m.index), fingerprint: m[1] ?? '' };
}

export function formatJoinString(token: string, fingerprint: string): string {
  return fingerprint ? `${token}@${fingerprint}` : token;
}
