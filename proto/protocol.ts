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
