/** The console's page: sign-in, then the overview, agents, jobs and a job's page, routed by path. */
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import type { SessionInfo } from '../control-plane/console/wire.js';
import { signOut, whoami } from './api.js';
import { connect, disconnect } from './live.js';
import { AgentsPage } from './pages/agents.js';
import { JobPage } from './pages/job.js';
import { JobsPage } from './pages/jobs.js';
import { OverviewPage } from './pages/overview.js';
import { SignIn } from './pages/signin.js';
import { navigate, onLink, usePath } from './router.js';

function App() {
  const [session, setSession] = useState<SessionInfo | null | undefined>(undefined);
  const path = usePath();
  useEffect(() => {
    whoami().then(
      (s) => setSession(s ?? null),
      () => setSession(null),
    );
  }, []);
  useEffect(() => {
    if (session) connect();
    else disconnect();
  }, [session]);
  if (session === undefined) return <p class="muted">loading…</p>;
  if (session === null) return <SignIn onSignedIn={setSession} />;
  const can = (method: string): boolean => session.allowed.includes(method);
  const jobId = /^\/jobs\/([^/]+)$/.exec(path)?.[1];
  return (
    <div onClick={onLink}>
      <header class="top">
        <a href="/" class="brand">
          runmesh
        </a>
        <nav>
          {can('ClusterService.Status') && <a href="/">Overview</a>}
          {can('ClusterService.ListAgents') && <a href="/agents">Agents</a>}
          <a href="/jobs">Jobs</a>
        </nav>
        <span class="who" data-testid="who">
          {session.name} ({session.role})
        </span>
        <button
          onClick={() => {
            void signOut().then(() => {
              setSession(null);
              navigate('/');
            });
          }}
        >
          Sign out
        </button>
      </header>
      <main>
        {jobId ? (
          <JobPage id={decodeURIComponent(jobId)} can={can} />
        ) : path === '/agents' ? (
          <AgentsPage can={can} />
        ) : path === '/jobs' || !can('ClusterService.Status') ? (
          <JobsPage />
        ) : (
          <OverviewPage />
        )}
      </main>
    </div>
  );
}

render(<App />, document.getElementById('app')!);
