/** Agents: labels, slots, load, health and breaker, last contact, version, executors and containment; actions for roles allowed. */
import { useEffect, useState } from 'preact/hooks';
import type { AgentView } from '../../control-plane/console/wire.js';
import { get, post } from '../api.js';
import { ago } from '../format.js';
import { onAgents } from '../live.js';

const ACTIONS: Array<[string, string, string]> = [
  ['drain', 'Drain', 'ClusterService.Drain'],
  ['cordon', 'Cordon', 'ClusterService.Cordon'],
  ['uncordon', 'Uncordon', 'ClusterService.Uncordon'],
  ['revoke', 'Revoke', 'ClusterService.RevokeAgent'],
];

export function AgentsPage({ can }: { can: (method: string) => boolean }) {
  const [agents, setAgents] = useState<AgentView[] | undefined>(undefined);
  const [error, setError] = useState('');
  useEffect(() => {
    get<AgentView[]>('/api/agents').then(setAgents, (e: Error) => setError(e.message));
    return onAgents(setAgents);
  }, []);
  const act = (name: string, action: string): void => {
    if (action === 'revoke' && !confirm(`Revoke ${name}'s credential? It must join again.`)) return;
    setError('');
    post(`/api/agents/${encodeURIComponent(name)}/${action}`).catch((e: Error) => setError(e.message));
  };
  const actions = ACTIONS.filter(([, , m]) => can(m));
  return (
    <section>
      <h2>Agents {agents && <span class="muted">({agents.length})</span>}</h2>
      {error && <p class="error">{error}</p>}
      <table class="grid" data-testid="agents">
        <thead>
          <tr>
            <th>Name</th>
            <th>State</th>
            <th>Slots used / all</th>
            <th>Load</th>
            <th>Breaker</th>
            <th>Last contact</th>
            <th>Version</th>
            <th>Executors</th>
            <th>Containment</th>
            <th>Labels</th>
            {actions.length > 0 && <th />}
          </tr>
        </thead>
        <tbody>
          {(agents ?? []).map((a) => (
            <tr key={a.name} data-agent={a.name}>
              <td>
                {a.name}
                <div class="muted">
                  {a.hostname} · {a.peer}
                </div>
              </td>
              <td>
                <span class={`pill ${a.state}`}>{a.state}</span>
                {a.unhealthy && <div class="error">{a.unhealthy}</div>}
              </td>
              <td>
                {a.slots - a.slotsFree} / {a.slots}
              </td>
              <td>{a.load.toFixed(2)}</td>
              <td>{a.breaker}</td>
              <td title={a.lastContact}>{ago(a.lastContact)}</td>
              <td>{a.version}</td>
              <td>{a.executors.join(', ')}</td>
              <td>{a.containment}</td>
              <td class="labels">
                {Object.entries(a.labels).map(([k, v]) => (
                  <code key={k}>
                    {k}={v}
                  </code>
                ))}
              </td>
              {actions.length > 0 && (
                <td class="actions">
                  {actions.map(([action, label]) => (
                    <button key={action} onClick={() => act(a.name, action)}>
                      {label}
                    </button>
                  ))}
                </td>
              )}
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
