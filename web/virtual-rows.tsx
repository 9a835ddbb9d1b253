/** A scrolling list that draws only the rows in view (plus a margin): fixed row height, so a thousand rows cost a screenful. */
import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';

const VIEW_ROWS = 25;
const MARGIN = 10;

export function VirtualRows<T>({ items, height, render }: { items: T[]; height: number; render: (item: T) => ComponentChildren }) {
  const [top, setTop] = useState(0);
  const first = Math.max(0, Math.floor(top / height) - MARGIN);
  const last = Math.min(items.length, first + VIEW_ROWS + 2 * MARGIN);
  return (
    <div class="virtual" style={{ height: `${VIEW_ROWS * height}px` }} onScroll={(e) => setTop((e.target as HTMLElement).scrollTop)}>
      <div style={{ height: `${items.length * height}px`, position: 'relative' }}>
        <div style={{ position: 'absolute', top: `${first * height}px`, left: 0, right: 0 }}>
          {items.slice(first, last).map((item, i) => (
            <div key={first + i} style={{ height: `${height}px` }}>
              {render(item)}
            </div>
          ))}
        </div>
      </div>
    </div>
  );
}
