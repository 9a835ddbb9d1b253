/**
 * The console API's JSON shapes: the contract between control-plane/console
 * (which builds them) and web/ (which reads them). Types only, so the browser
 * bundle imports nothing from the server. Enums travel as the proto's names
 * without their prefix, lower case ("running", "exit_code").
 */

/** The signed-in caller, and which of the table's methods its role may call (the page shows buttons by this). */
export interface SessionInfo {
  name: string;
  role: string;
  tenants: string[] | 'all';
  /** Table methods ("JobService.Cancel") this role may call. */
  allowed: string[];
  /** To send back in the x-runmesh-csrf header with every mutation; absent for a bearer-token caller. */
  csrf?: string;
}

/** One job in a list or a live update. */
export interface JobSummary {
  id: string;
  name: string;
  tenant: string;
  state: string;
  qos: string;
  selector: string;
  createdAt: string;
  updatedAt: string;
  attempt: number;
  agent: string;
  exitCode: number;
  failure: string;
  waitingReason: string;
  /** What the latest attempt that reported said of its progress (`::progress`); absent until one did. */
  progress?: ProgressView;
}

export interface ProgressView {
  attempt: number;
  /** 0-100; absent until the job printed a `::progress N`. */
  percent?: number;
  text: string;
}

/** A job's annotation (notice, warning, error) or log group boundary, where its line starts in the attempt's log. */
export interface AnnotationView {
  kind: 'notice' | 'warning' | 'error' | 'group_start' | 'group_end';
  text: string;
  seq: number;
  offset: number;
  fromFile: boolean;
}

export interface JobPage {
  jobs: JobSummary[];
  /** Pass as `before` for the next (older) page; '' when no older job matches. */
  next: string;
}

export interface AttemptView {
  number: number;
  agent: string;
  state: string;
  assignedAt: string;
  startedAt: string;
  finishedAt: string;
  exitCode: number;
  failure: string;
  message: string;
  peakMemoryBytes: string;
  cpuSeconds: number;
  /** What the attempt stored of its artifacts (bytes as a decimal string), or why not; absent when it uploaded none. */
  artifacts?: { files: number; bytes: string; error: string };
}

/** GET /api/jobs/<id>/artifacts: one attempt's stored files (ArtifactService.ListArtifacts). */
export interface ArtifactsView {
  /** The attempt listed; 0 when no attempt stored artifacts. */
  attempt: number;
  /** Each downloads from /api/jobs/<id>/artifacts/<attempt>/<path, URI-encoded as one segment>. */
  files: Array<{ path: string; size: string; sha256: string }>;
  /** Why the attempt's upload failed ('' when it did not). */
  error: string;
}

/** A job's page: the spec as stored (secrets are references by name, never values), its timeline and attempts. */
export interface JobDetail {
  summary: JobSummary;
  spec: Record<string, unknown>;
  timeline: Array<{ state: string; at: string; attempt: number; reason: string }>;
  attempts: AttemptView[];
  /** The annotations of the attempt in `summary.progress` (its groups fold that attempt's log). */
  annotations: AnnotationView[];
  /** Annotations over the limit, only counted. */
  droppedAnnotations: number;
  /** For a queued job: why it waits. */
  waiting?: WaitExplanation;
}

/** "Why is it waiting?", from the router's own matching (routing/explain.ts). */
export interface WaitExplanation {
  /** The scheduler's latest one-line reason. */
  reason: string;
  /** Selector terms no connected agent satisfies. */
  unmatchedTerms: string[];
  /** Agents that match the selector, and why each cannot take the job now ('' when it could). */
  matching: Array<{ agent: string; why: string }>;
  /** 1-based place among the queued jobs of its QoS class and tenant, oldest first, and how many there are. */
  position: number;
  queued: number;
}

export interface AgentView {
  name: string;
  state: string;
  labels: Record<string, string>;
  slots: number;
  slotsFree: number;
  running: number;
  load: number;
  unhealthy: string;
  /** The router's circuit breaker for this agent: closed, open or half_open. */
  breaker: string;
  lastContact: string;
  connectedAt: string;
  version: string;
  peer: string;
  hostname: string;
  containment: string;
  executors: string[];
}

export interface Overview {
  version: string;
  leader: string;
  peers: Array<{ id: string; address: string; leader: boolean; agents: number }>;
  agentsByState: Record<string, number>;
  /** Per QoS class and tenant (only the caller's tenants): queued jobs and the oldest one's age. */
  queues: Array<{ qos: string; tenant: string; queued: number; oldestAgeMs: number }>;
  /** The last 30 minutes, oldest first: jobs that ended per minute, by final state. */
  finishedPerMinute: Array<{ minute: string; byState: Record<string, number> }>;
  recentFailures: JobSummary[];
}

/** Server-sent events on /api/events: `jobs` (changed jobs), `agents` (the whole list when it changed). */
export type LiveEvent = { type: 'jobs'; jobs: JobSummary[] } | { type: 'agents'; agents: AgentView[] };

/** Server-sent `log` events on /api/jobs/<id>/log: decoded text of one record. */
export interface LogEvent {
  attempt: number;
  seq: number;
  stream: 'stdout' | 'stderr';
  text: string;
}
