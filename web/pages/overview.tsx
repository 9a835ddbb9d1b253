/** The overview: peers and leader, agents by state, queues per QoS class and tenant, jobs ended per minute, recent failures. */
import { useEffect, useState } from 'preact/hooks';
import type { Overview } from '../../control-plane/console/wire.js';
import { get } from '../api.js';
import { ago, duration } from '../format.js';
import { onJobs } from '../live.js';

/** Job changes refresh the figures, at most this often. */
const REFRESH_MS = 3000;

export function OverviewPage() {
  const [o, setO] = useState<Overview | undefined>(undefined);
  const [error, setError] = useState('');
  useEffect(() => {
    let last = 0;
    let timer: number | undefined;
    const load = (): void => {
      last = Date.now();
      timer = undefined;
      get<Overview>('/api/overview').then(setO, (e: Error) => setError(e.message));
    };
    load();
    const off = onJobs(() => {
      timer ??= window.setTimeout(load, Math.max(0, last + REFRESH_MS - Date.now()));
    });
    return () => {
      off();
      clearTimeout(timer);
    };
  }, []);
  if (error) return <p class="error">{error}</p>;
  if (!o) return <p class="muted">loading…</p>;
  const max = Math.max(1, ...o.finishedPerMinute.map((m) => Object.values(m.byState).reduce((a, b) => a + b, 0)));
  return (
    <section class="overview">
      <div class="cards">
        <div class="card">
          <h3>Peers</h3>
          {o.peers.map((p) => (
            <div key={p.id}>
              {p.id} {p.leader && <span class="pill ready">leader</span>} <span class="muted">{p.agents} agents</span>
            </div>
          ))}
          <div class="muted">version {o.version}</div>
        </div>
        <div class="card">
          <h3>Agents</h3>
          {Object.entries(o.agentsByState).map(([s, n]) => (
            <div key={s}>
              <span class={`pill ${s}`}>{s}</span> {n}
            </div>
          ))}
        </div>
        <div class="card">
          <h3>Queues</h3>
          <table class="grid">
            <tbody>
              {o.queues.length === 0 && (
                <tr>
                  <td class="muted">nothing queued</td>
                </tr>
              )}
              {o.queues.map((q) => (
                <tr key={q.qos + q.tenant}>
                  <td>{q.qos}</td>
                  <td>{q.tenant}</td>
                  <td>{q.queued}</td>
                  <td class="muted">oldest {duration(q.oldestAgeMs)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </div>
      <h3>Jobs ended per minute</h3>
      <div class="bars">
        {o.finishedPerMinute.map((m) => (
          <div key={m.minute} class="bar" title={`${new Date(m.minute).toLocaleTimeString()}: ${JSON.stringify(m.byState)}`}>
            {Object.entries(m.byState).map(([s, n]) => (
              <div key={s} class={`seg ${s}`} style={{ height: `${(n / max) * 100}%` }} />
            ))}
          </div>
        ))}
      </div>
      <h3>Recent failures</h3>
      <table class="grid">
        <tbody>
          {o.recentFailures.map((j) => (
            <tr key={j.id}>
              <td>
                <a href={`/jobs/${j.id}`}>{j.id}</a>
              </td>
              <td>{j.name}</td>
              <td>
                <span class={`pill ${j.state}`}>{j.state}</span> {j.failure}
              </td>
              <td class="muted">{ago(j.updatedAt)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
