/**
 * Jobs, newest first: filters (state, tenant, label, name, time), pages of up
 * to a thousand, go to an id. Rows are drawn only where they are in view (a
 * fixed row height), so a thousand-row page scrolls smoothly; live changes
 * update rows in place.
 */
import { useEffect, useState } from 'preact/hooks';
import type { JobPage, JobSummary } from '../../control-plane/console/wire.js';
import { get } from '../api.js';
import { ago } from '../format.js';
import { onJobs } from '../live.js';
import { navigate } from '../router.js';
import { ProgressBar } from '../progress.js';
import { VirtualRows } from '../virtual-rows.js';

const STATES = ['queued', 'assigned', 'running', 'succeeded', 'failed', 'cancelled', 'timed_out', 'dead', 'skipped'];
/** Text filters and their placeholders: the server matches labels the job requires and the start of its name. */
const TEXT_FIELDS = [
  ['tenant', 'tenant'],
  ['label', 'label (gpu, os=linux)'],
  ['name', 'name starts with'],
] as const;
const TIME_FIELDS = ['since', 'until'] as const;

export function JobsPage() {
  const [filter, setFilter] = useState<Record<string, string>>(() => Object.fromEntries(new URLSearchParams(location.search)));
  const [pages, setPages] = useState<string[]>(['']);
  const [page, setPage] = useState<JobPage | undefined>(undefined);
  const [error, setError] = useState('');
  const [goto, setGoto] = useState('');
  const before = pages.at(-1) ?? '';

  useEffect(() => {
    const set = Object.entries(filter).filter(([, v]) => v);
    const shown = new URLSearchParams(set).toString();
    history.replaceState(null, '', `/jobs${shown ? `?${shown}` : ''}${location.hash}`);
    const q = new URLSearchParams(set.map(([k, v]) => [k, k === 'since' || k === 'until' ? new Date(v).toISOString() : v]));
    q.set('limit', '1000');
    if (before) q.set('before', before);
    setError('');
    get<JobPage>(`/api/jobs?${q.toString()}`).then(setPage, (e: Error) => setError(e.message));
  }, [filter, before]);

  useEffect(
    () =>
      onJobs((changed) => {
        setPage((p) => {
          if (!p) return p;
          const byId = new Map(changed.map((j) => [j.id, j]));
          const jobs = p.jobs.map((j) => byId.get(j.id) ?? j);
          // New jobs appear on the first page when no filter is set (a filter is the server's to apply).
          const fresh =
            !before && !Object.values(filter).some(Boolean)
              ? changed.filter((j) => !p.jobs.some((x) => x.id === j.id) && (!p.jobs[0] || j.id > p.jobs[0].id))
              : [];
          return { ...p, jobs: [...fresh.reverse(), ...jobs] };
        });
      }),
    [filter, before],
  );

  const set = (k: string, v: string): void => {
    setPages(['']);
    setFilter((f) => ({ ...f, [k]: v }));
  };
  return (
    <section>
      <h2>Jobs {page && <span class="muted">({`${page.jobs.length}${page.next ? '+' : ''} matching`})</span>}</h2>
      <form
        class="filters"
        onSubmit={(e) => {
          e.preventDefault();
          if (goto.trim()) navigate(`/jobs/${encodeURIComponent(goto.trim())}`);
        }}
      >
        <select value={filter.state ?? ''} onChange={(e) => set('state', (e.target as HTMLSelectElement).value)}>
          <option value="">any state</option>
          {STATES.map((s) => (
            <option key={s}>{s}</option>
          ))}
        </select>
        {TEXT_FIELDS.map(([k, hint]) => (
          <input
            key={k}
            name={k}
            type="text"
            placeholder={hint}
            value={filter[k] ?? ''}
            onChange={(e) => set(k, (e.target as HTMLInputElement).value)}
          />
        ))}
        {TIME_FIELDS.map((k) => (
          <input
            key={k}
            name={k}
            type="datetime-local"
            title={k}
            value={filter[k] ?? ''}
            onChange={(e) => set(k, (e.target as HTMLInputElement).value)}
          />
        ))}
        <input name="goto" placeholder="go to job id" value={goto} onInput={(e) => setGoto((e.target as HTMLInputElement).value)} />
        <button type="submit">Go</button>
      </form>
      {error && <p class="error">{error}</p>}
      <div class="jobs-head row">
        <span>Id</span>
        <span>Name</span>
        <span>Tenant</span>
        <span>State</span>
        <span>Agent</span>
        <span>Created</span>
      </div>
      <VirtualRows items={page?.jobs ?? []} height={28} render={(j) => <JobRow job={j} />} />
      <div class="pager">
        <button disabled={pages.length === 1} onClick={() => setPages((p) => p.slice(0, -1))}>
          Newer
        </button>
        <button disabled={!page?.next} onClick={() => page?.next && setPages((p) => [...p, page.next])}>
          Older
        </button>
      </div>
    </section>
  );
}

function JobRow({ job }: { job: JobSummary }) {
  return (
    <div class="row" data-job={job.id}>
      <a href={`/jobs/${job.id}`}>{job.id}</a>
      <span>{job.name}</span>
      <span>{job.tenant}</span>
      <span>
        <span class={`pill ${job.state}`}>{job.state}</span> <ProgressBar progress={job.progress} compact /> {job.failure}
      </span>
      <span>{job.agent}</span>
      <span title={job.createdAt}>{ago(job.createdAt)}</span>
    </div>
  );
}
