/**
 * A job's artifacts on its page: the files of the latest attempt that stored
 * any, each a download link (the console's attachment route), or why that
 * attempt's upload failed.
 */
import { useEffect, useState } from 'preact/hooks';
import type { ArtifactsView } from '../control-plane/console/wire.js';
import { get } from './api.js';
import { bytes } from './format.js';

/** `version` changes when an attempt's artifacts change (the list is fetched again then). */
export function Artifacts({ jobId, version }: { jobId: string; version: string }) {
  const [view, setView] = useState<ArtifactsView | undefined>(undefined);
  const [error, setError] = useState('');
  useEffect(() => {
    setError('');
    get<ArtifactsView>(`/api/jobs/${encodeURIComponent(jobId)}/artifacts`).then(setView, (e: Error) => setError(e.message));
  }, [jobId, version]);
  if (error) return <p class="error">{error}</p>;
  if (!view) return <p class="muted">loading…</p>;
  if (view.error)
    return (
      <p class="error">
        attempt {view.attempt}: the upload failed: {view.error}
      </p>
    );
  if (view.files.length === 0) return <p class="muted">no artifacts</p>;
  const base = `/api/jobs/${encodeURIComponent(jobId)}/artifacts/${view.attempt}/`;
  return (
    <table class="grid" data-testid="artifacts">
      <thead>
        <tr>
          <th>Path (attempt {view.attempt})</th>
          <th>Size</th>
          <th>sha256</th>
        </tr>
      </thead>
      <tbody>
        {view.files.map((f) => (
          <tr key={f.path}>
            <td>
              <a href={base + encodeURIComponent(f.path)} download data-artifact={f.path}>
                {f.path}
              </a>
            </td>
            <td>{bytes(f.size)}</td>
            <td class="muted" title={f.sha256}>
              {f.sha256.slice(0, 12)}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
