/**
 * The tab's one live connection: an EventSource on /api/events (the server
 * fans one subscription out to every tab), shared by every page. Pages
 * subscribe to changed jobs and to the agent list; nothing polls.
 */
import type { AgentView, JobSummary } from '../control-plane/console/wire.js';

type JobsListener = (jobs: JobSummary[]) => void;
type AgentsListener = (agents: AgentView[]) => void;

const jobListeners = new Set<JobsListener>();
const agentListeners = new Set<AgentsListener>();
let source: EventSource | undefined;
let agents: AgentView[] | undefined;

export function connect(): void {
  if (source) return;
  source = new EventSource('/api/events');
  source.addEventListener('jobs', (e) => {
    const jobs = JSON.parse((e as MessageEvent<string>).data) as JobSummary[];
    for (const l of jobListeners) l(jobs);
  });
  source.addEventListener('agents', (e) => {
    agents = JSON.parse((e as MessageEvent<string>).data) as AgentView[];
    for (const l of agentListeners) l(agents);
  });
}

export function disconnect(): void {
  source?.close();
  source = undefined;
  agents = undefined;
}

export function onJobs(l: JobsListener): () => void {
  jobListeners.add(l);
  return () => void jobListeners.delete(l);
}

/** Calls `l` with the latest list at once when there is one, then on every change. */
export function onAgents(l: AgentsListener): () => void {
  agentListeners.add(l);
  if (agents) l(agents);
  return () => void agentListeners.delete(l);
}
