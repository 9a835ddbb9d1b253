/**
 * What an outbound hook can be sent: the events, the checks on a hook's URL
 * and event list, and each event's JSON body. A body names the event, its
 * delivery id and time, and a slim view of the job (never its spec: env and
 * argv may hold what a receiver should not see) or the agent.
 *
 *   job.finished  a job ended SUCCEEDED or CANCELLED
 *   job.failed    a job ended FAILED, TIMED_OUT, DEAD or SKIPPED
 *   agent.lost    the leader gave up on an agent that vanished with attempts
 */
import { failureCategoryToJSON, JobState, jobStateToJSON, type Job } from '../../proto/gen/runmesh/v1/job.js';
import { isTerminal } from '../jobs/state.js';
import { ValidationError } from '../jobs/errors.js';

export const EVENTS = ['job.finished', 'job.failed', 'agent.lost'] as const;
export type HookEvent = (typeof EVENTS)[number];

/** An http(s) URL of at most 2048 characters. The hook's creator (hooks.manage, an admin) is trusted with where it points. */
export function checkUrl(url: string, field = 'url'): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new ValidationError(field, `"${url.slice(0, 80)}" is not a URL`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new ValidationError(field, 'http:// or https:// only');
  if (url.length > 2048) throw new ValidationError(field, 'longer than 2048 characters');
  if (u.username || u.password) throw new ValidationError(field, 'no credentials in the URL: the signature authenticates the sender');
  return url;
}

export function checkEvents(events: readonly string[], field = 'events'): string[] {
  if (!events.length) throw new ValidationError(field, `name at least one of ${EVENTS.join(', ')}`);
  for (const e of events)
    if (!(EVENTS as readonly string[]).includes(e))
      throw new ValidationError(field, `unknown event "${e.slice(0, 64)}" (${EVENTS.join(', ')})`);
  return [...new Set(events)];
}

/** The event a job's record is, or undefined while it has not ended. */
export function jobEvent(job: Job): HookEvent | undefined {
  if (!isTerminal(job.state)) return undefined;
  return job.state === JobState.JOB_STATE_SUCCEEDED || job.state === JobState.JOB_STATE_CANCELLED ? 'job.finished' : 'job.failed';
}

export function jobBody(event: HookEvent, delivery: string, job: Job, now: Date): string {
  return JSON.stringify({
    event,
    delivery,
    time: now.toISOString(),
    job: {
      id: job.id,
      name: job.spec?.name ?? '',
      tenant: job.spec?.tenant ?? '',
      state: jobStateToJSON(job.state),
      exit_code: job.exitCode,
      failure: failureCategoryToJSON(job.failure),
      attempt: job.attempt,
      pipeline_id: job.pipelineId || undefined,
      created_at: job.createdAt,
      updated_at: job.updatedAt,
    },
  });
}

export function agentBody(delivery: string, agent: string, jobs: readonly string[], reason: string, now: Date): string {
  return JSON.stringify({ event: 'agent.lost', delivery, time: now.toISOString(), agent: { name: agent, jobs, reason } });
}
