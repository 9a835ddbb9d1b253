/**
 * A job's log, followed live over server-sent events (/api/jobs/<id>/log):
 * ANSI colours, collapsible groups where the agent found `::group` ...
 * `::endgroup` (the job's annotations, `marks`), and a link on every line
 * number (#L<n>; the linked line is highlighted and its group opened).
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import type { LogEvent } from '../../control-plane/console/wire.js';
import { foldGroups, LogModel, type GroupMark, type Line } from './model.js';

export function LogView({ jobId, attempt, marks }: { jobId: string; attempt: number; marks: readonly GroupMark[] }) {
  const model = useRef(new LogModel());
  const [, setVersion] = useState(0);
  const [status, setStatus] = useState('connecting');
  const [toggled, setToggled] = useState<Record<number, boolean>>({});
  const target = useTargetLine();

  useEffect(() => {
    model.current = new LogModel();
    setVersion((v) => v + 1);
    const es = new EventSource(`/api/jobs/${encodeURIComponent(jobId)}/log?attempt=${attempt}`);
    let frame = 0;
    const redraw = (): void => {
      frame ||= requestAnimationFrame(() => {
        frame = 0;
        setVersion((v) => v + 1);
      });
    };
    es.onopen = () => setStatus('live');
    es.addEventListener('log', (e) => {
      const ev = JSON.parse((e as MessageEvent<string>).data) as LogEvent;
      if (model.current.append(ev.stream, ev.text, ev.seq)) redraw();
    });
    es.addEventListener('end', () => {
      model.current.finish();
      setStatus('ended');
      es.close();
      redraw();
    });
    es.addEventListener('failed', (e) => {
      setStatus(`failed: ${(JSON.parse((e as MessageEvent<string>).data) as { error: string }).error}`);
      es.close();
    });
    return () => {
      es.close();
      cancelAnimationFrame(frame);
    };
  }, [jobId, attempt]);

  const m = model.current;
  const { groups, of } = foldGroups(m.lines, marks, m.ended);
  const groupOf = (l: Line): number => of[l.n - 1] ?? -1;
  const isOpen = (g: number): boolean => {
    const group = groups[g]!;
    return toggled[g] ?? (!group.ended || (target !== undefined && of[target - 1] === g));
  };
  const shown = m.lines.filter((l) => groupOf(l) < 0 || groups[groupOf(l)]!.line === l.n || isOpen(groupOf(l)));
  return (
    <div class="log-box">
      <div class="log-status" data-status={status}>
        log: {status} · {m.lines.length} lines
      </div>
      <pre class="log" data-testid="log">
        {shown.map((l) => (
          <LogLine
            key={l.n}
            line={l}
            inGroup={groupOf(l) >= 0}
            header={
              groupOf(l) >= 0 && groups[groupOf(l)]!.line === l.n ? { open: isOpen(groupOf(l)), name: groups[groupOf(l)]!.name } : undefined
            }
            onToggle={() => setToggled((t) => ({ ...t, [groupOf(l)]: !isOpen(groupOf(l)) }))}
            target={target === l.n}
          />
        ))}
      </pre>
    </div>
  );
}

function LogLine(p: {
  line: Line;
  inGroup: boolean;
  header: { open: boolean; name: string } | undefined;
  onToggle: () => void;
  target: boolean;
}) {
  const { line } = p;
  const cls = `line ${line.stream === 'stderr' ? 'stderr' : ''} ${p.target ? 'target' : ''} ${p.inGroup ? 'in-group' : ''}`;
  return (
    <div class={cls} id={`L${line.n}`}>
      <a class="ln" href={`#L${line.n}`}>
        {line.n}
      </a>
      {p.header ? (
        <button class="group" onClick={p.onToggle} aria-expanded={p.header.open}>
          {p.header.open ? '▾' : '▸'} {p.header.name}
        </button>
      ) : (
        line.runs.map((r, i) => (
          <span key={i} class={r.classes || undefined} style={r.style}>
            {r.text}
          </span>
        ))
      )}
      {'\n'}
    </div>
  );
}

/** The line named by the URL's #L<n>, kept current as the hash changes. */
function useTargetLine(): number | undefined {
  const read = (): number | undefined => {
    const m = /^#L(\d+)$/.exec(location.hash);
    return m ? Number(m[1]) : undefined;
  };
  const [n, setN] = useState(read);
  const scrolled = useRef<number | undefined>(undefined);
  useEffect(() => {
    const on = (): void => setN(read());
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  // Scrolled to once, when the line is there (it may arrive with a later record), not on every redraw.
  useEffect(() => {
    if (n === undefined || scrolled.current === n) return;
    const el = document.getElementById(`L${n}`);
    if (!el) return;
    el.scrollIntoView({ block: 'center' });
    scrolled.current = n;
  });
  return n;
}
