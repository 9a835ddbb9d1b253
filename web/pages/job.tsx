/**
 * One job: its state, cancel and retry (for roles allowed), "why is it
 * waiting?" while queued, the spec (secrets appear only as references), the
 * timeline, the attempts with their agent, failure and usage, and the log
 * of the chosen attempt, live.
 */
import { useEffect, useState } from 'preact/hooks';
import type { JobDetail, JobSummary } from '../../control-plane/console/wire.js';
import { get, post } from '../api.js';
import { Artifacts } from '../artifacts.js';
import { mib, time } from '../format.js';
import { onJobs } from '../live.js';
import { LogView } from '../log/log-view.js';
import type { GroupMark } from '../log/model.js';
import { Annotations, ProgressBar } from '../progress.js';
import { navigate } from '../router.js';

const ENDED = new Set(['succeeded', 'failed', 'cancelled', 'timed_out', 'dead', 'skipped']);
/** What Retry re-drives (JobService.Retry): ended, but not succeeded or skipped. */
const REDRIVABLE = new Set(['failed', 'cancelled', 'timed_out', 'dead']);

const NO_MARKS: readonly GroupMark[] = [];

/** The group boundaries among the job's annotations (of the attempt that reported them). */
function groupMarks(job: JobDetail): GroupMark[] {
  return job.annotations.flatMap((a) => (a.kind === 'group_start' || a.kind === 'group_end' ? [{ ...a, kind: a.kind }] : []));
}

/** Which attempts reported artifacts, and what: '' while none did. */
function artifactsVersion(job: JobDetail): string {
  return job.attempts
    .filter((a) => a.artifacts)
    .map((a) => `${a.number}:${a.artifacts!.files}:${a.artifacts!.error}`)
    .join(',');
}

export function JobPage({ id, can }: { id: string; can: (method: string) => boolean }) {
  const [job, setJob] = useState<JobDetail | undefined>(undefined);
  const [error, setError] = useState('');
  const [attempt, setAttempt] = useState(0);
  useEffect(() => {
    setJob(undefined);
    setAttempt(0);
    const load = (): void => void get<JobDetail>(`/api/jobs/${encodeURIComponent(id)}`).then(setJob, (e: Error) => setError(e.message));
    load();
    return onJobs((changed: JobSummary[]) => {
      if (changed.some((j) => j.id === id)) load();
    });
  }, [id]);
  if (error && !job) return <p class="error">{error}</p>;
  if (!job) return <p class="muted">loading…</p>;
  const s = job.summary;
  const shownAttempt = attempt || s.attempt;
  const uploaded = artifactsVersion(job);
  const act = (what: 'cancel' | 'retry'): void => {
    setError('');
    post<JobSummary>(`/api/jobs/${encodeURIComponent(id)}/${what}`).then(
      (j) => what === 'retry' && navigate(`/jobs/${j.id}`),
      (e: Error) => setError(e.message),
    );
  };
  return (
    <section class="job">
      <h2>
        {s.name || s.id}{' '}
        <span class={`pill ${s.state}`} data-testid="job-state">
          {s.state}
        </span>
      </h2>
      <div class="muted">
        {s.id} · tenant {s.tenant} · {s.qos} · created {time(s.createdAt)}
        {s.failure && ` · ${s.failure}`}
        {ENDED.has(s.state) && s.state !== 'cancelled' && ` · exit ${s.exitCode}`}
      </div>
      <ProgressBar progress={s.progress} />
      <Annotations items={job.annotations} dropped={job.droppedAnnotations} />
      <div class="actions">
        {can('JobService.Cancel') && !ENDED.has(s.state) && <button onClick={() => act('cancel')}>Cancel</button>}
        {can('JobService.Retry') && REDRIVABLE.has(s.state) && <button onClick={() => act('retry')}>Retry</button>}
      </div>
      {error && <p class="error">{error}</p>}
      {job.waiting && (
        <div class="card waiting" data-testid="waiting">
          <h3>Why is it waiting?</h3>
          <p>{job.waiting.reason || 'waiting for the scheduler'}</p>
          <p>
            Place in its queue ({s.qos}, tenant {s.tenant}): {job.waiting.position} of {job.waiting.queued}
          </p>
          {job.waiting.unmatchedTerms.length > 0 && (
            <p>
              No agent matches:{' '}
              {job.waiting.unmatchedTerms.map((t) => (
                <code key={t}>{t} </code>
              ))}
            </p>
          )}
          {job.waiting.matching.length > 0 && (
            <ul>
              {job.waiting.matching.map((m) => (
                <li key={m.agent}>
                  {m.agent}: {m.why || 'could take it'}
                </li>
              ))}
            </ul>
          )}
        </div>
      )}
      {s.attempt > 0 && (
        <div class="log-head">
          <h3>Log</h3>
          <select value={shownAttempt} onChange={(e) => setAttempt(Number((e.target as HTMLSelectElement).value))}>
            {job.attempts.map((a) => (
              <option key={a.number} value={a.number}>
                attempt {a.number} on {a.agent}
              </option>
            ))}
          </select>
        </div>
      )}
      {s.attempt > 0 ? (
        <LogView jobId={s.id} attempt={shownAttempt} marks={s.progress?.attempt === shownAttempt ? groupMarks(job) : NO_MARKS} />
      ) : (
        <p class="muted">no attempt yet</p>
      )}
      {uploaded && can('ArtifactService.ListArtifacts') && (
        <>
          <h3>Artifacts</h3>
          <Artifacts jobId={s.id} version={uploaded} />
        </>
      )}
      <h3>Attempts</h3>
      <table class="grid">
        <thead>
          <tr>
            <th>#</th>
            <th>Agent</th>
            <th>State</th>
            <th>Failure</th>
            <th>Exit</th>
            <th>Started</th>
            <th>Finished</th>
            <th>Peak memory</th>
            <th>CPU</th>
          </tr>
        </thead>
        <tbody>
          {job.attempts.map((a) => (
            <tr key={a.number}>
              <td>{a.number}</td>
              <td>{a.agent}</td>
              <td>{a.state}</td>
              <td title={a.message}>
                {a.failure} {a.message && <span class="muted">{a.message}</span>}
              </td>
              <td>{a.finishedAt ? a.exitCode : ''}</td>
              <td>{time(a.startedAt)}</td>
              <td>{time(a.finishedAt)}</td>
              <td>{mib(a.peakMemoryBytes)}</td>
              <td>{a.cpuSeconds ? `${a.cpuSeconds.toFixed(2)} s` : ''}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <h3>Timeline</h3>
      <table class="grid">
        <tbody>
          {job.timeline.map((t, i) => (
            <tr key={i}>
              <td>{time(t.at)}</td>
              <td>{t.state}</td>
              <td>{t.attempt || ''}</td>
              <td class="muted">{t.reason}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <h3>Spec</h3>
      <pre class="spec">{JSON.stringify(job.spec, null, 2)}</pre>
    </section>
  );
}
