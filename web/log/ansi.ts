/**
 * ANSI SGR colour codes in a log line → styled runs of text. Only SGR (`ESC [
 * … m`) is rendered; other escape sequences are dropped. The 16 colours are
 * classes (the stylesheet picks them), 256-colour and RGB ones inline styles.
 */
export interface Run {
  text: string;
  classes: string;
  style: Record<string, string> | undefined;
}

export interface Pen {
  fg: string;
  bg: string;
  bold: boolean;
  dim: boolean;
  italic: boolean;
  underline: boolean;
}

export const PLAIN: Pen = { fg: '', bg: '', bold: false, dim: false, italic: false, underline: false };

// eslint-disable-next-line no-control-regex
const ESCAPE = /\x1b\[([0-9;]*)([A-Za-z])|\x1b[^[]/g;

function color256(n: number): string {
  if (n < 16) return `c${n}`;
  if (n < 232) {
    const v = [0, 95, 135, 175, 215, 255];
    const i = n - 16;
    return `rgb(${v[Math.floor(i / 36)]},${v[Math.floor(i / 6) % 6]},${v[i % 6]})`;
  }
  const g = 8 + (n - 232) * 10;
  return `rgb(${g},${g},${g})`;
}

function apply(pen: Pen, params: number[]): Pen {
  const p = { ...pen };
  for (let i = 0; i < params.length; i++) {
    const c = params[i]!;
    if (c === 0) Object.assign(p, PLAIN);
    else if (c === 1) p.bold = true;
    else if (c === 2) p.dim = true;
    else if (c === 3) p.italic = true;
    else if (c === 4) p.underline = true;
    else if (c === 22) p.bold = p.dim = false;
    else if (c === 23) p.italic = false;
    else if (c === 24) p.underline = false;
    else if (c >= 30 && c <= 37) p.fg = `c${c - 30}`;
    else if (c >= 90 && c <= 97) p.fg = `c${c - 90 + 8}`;
    else if (c === 39) p.fg = '';
    else if (c >= 40 && c <= 47) p.bg = `c${c - 40}`;
    else if (c >= 100 && c <= 107) p.bg = `c${c - 100 + 8}`;
    else if (c === 49) p.bg = '';
    else if (c === 38 || c === 48) {
      const key = c === 38 ? 'fg' : 'bg';
      if (params[i + 1] === 5) {
        p[key] = color256(params[i + 2] ?? 0);
        i += 2;
      } else if (params[i + 1] === 2) {
        p[key] = `rgb(${params[i + 2] ?? 0},${params[i + 3] ?? 0},${params[i + 4] ?? 0})`;
        i += 4;
      }
    }
  }
  return p;
}

function run(text: string, pen: Pen): Run {
  const classes: string[] = [];
  const style: Record<string, string> = {};
  if (pen.fg.startsWith('c')) classes.push(`fg-${pen.fg}`);
  else if (pen.fg) style.color = pen.fg;
  if (pen.bg.startsWith('c')) classes.push(`bg-${pen.bg}`);
  else if (pen.bg) style.backgroundColor = pen.bg;
  if (pen.bold) classes.push('b');
  if (pen.dim) classes.push('dim');
  if (pen.italic) classes.push('i');
  if (pen.underline) classes.push('u');
  return { text, classes: classes.join(' '), style: Object.keys(style).length ? style : undefined };
}

/** The runs of one line, starting with `pen`; returns the pen the line ends with (colours carry over lines). */
export function parseLine(line: string, pen: Pen): { runs: Run[]; pen: Pen } {
  const runs: Run[] = [];
  let at = 0;
  for (const m of line.matchAll(ESCAPE)) {
    if (m.index > at) runs.push(run(line.slice(at, m.index), pen));
    if (m[2] === 'm')
      pen = apply(
        pen,
        (m[1] || '0').split(';').map((x) => Number(x) || 0),
      );
    at = m.index + m[0].length;
  }
  if (at < line.length) runs.push(run(line.slice(at), pen));
  return { runs, pen };
}
