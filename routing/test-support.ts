/**
 * Builders shared by routing's tests and benchmark: agents, jobs and the
 * property-test seed. Plain data, no fast-check, so the benchmark can use it.
 */
import type { AgentView, QueuedJob, Resources, RunningAttemptView } from './types.js';

/** The seed for property tests: FC_SEED from the environment, else a fixed one. */
export const TEST_SEED = Number(process.env['FC_SEED'] ?? 20_240_611);

export const res = (slots: number, cpuMillis = 0, memoryMb = 0): Resources => ({ slots, cpuMillis, memoryMb });

export function agent(
  name: string,
  labels: Record<string, string> = {},
  capacity: Resources = res(4),
  over: Partial<AgentView> = {},
): AgentView {
  return { name, labels, capacity, free: capacity, load: 0, schedulable: true, ...over };
}

let order = 0;

export function job(id: string, over: Partial<QueuedJob> = {}): QueuedJob {
  return {
    id,
    selector: '',
    resources: res(1),
    qos: 'standard',
    tenant: 'default',
    priority: 0,
    affinityKey: '',
    strategy: 'spread',
    order: order++,
    ...over,
  };
}

export const running = (
  jobId: string,
  agentName: string,
  qos: RunningAttemptView['qos'],
  resources: Resources = res(1),
): RunningAttemptView => ({
  jobId,
  agent: agentName,
  qos,
  resources,
});

/** An agent with `used` subtracted from its free resources (the attempts it runs now). */
export function busyAgent(a: AgentView, used: Resources): AgentView {
  return {
    ...a,
    free: { slots: a.free.slots - used.slots, cpuMillis: a.free.cpuMillis - used.cpuMillis, memoryMb: a.free.memoryMb - used.memoryMb },
  };
}
