/** Wire protocol version spoken on AgentService.Connect; bumped on incompatible changes. */
export const PROTOCOL_VERSION = 1;

/**
 * Response header of AgentService.Connect: the messages beyond the base
 * protocol the control plane takes, comma-separated. An agent sends those
 * only when its control plane names them: one that predates a message ends
 * the stream on it (it reads as empty).
 */
export const ACCEPTS_HEADER = 'runmesh-accepts';
/** JobProgress (ConnectRequest.job_progress). */
export const JOB_PROGRESS_FEATURE = 'job-progress';
/**
 * AgentService.BeginArtifacts / UploadArtifact / CommitArtifacts: an agent
 * uploads an attempt's artifacts only to a control plane that names this.
 * With an older one the upload fails with a reason saying so.
 */
export const ARTIFACTS_FEATURE = 'artifacts';
/**
 * The largest BeginArtifacts request (the manifest: every file's path, size
 * and sha256) a control plane takes. The agent checks its manifest against
 * it first, so a job matching too many files fails saying so, not with the
 * transport's "message larger than max".
 */
export const ARTIFACT_MANIFEST_BYTES = 4 * 1024 * 1024;
/**
 * Metadata of the artifact upload calls: the agent's name, beside its
 * credential as `authorization: Bearer rma_...`.
 */
export const AGENT_NAME_HEADER = 'runmesh-agent';
