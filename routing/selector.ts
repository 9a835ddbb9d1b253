/** Label selectors: `os=linux,pool=ci`. Equality only for now; parse errors name the position. */

export type Requirement = { readonly key: string; readonly op: '='; readonly values: readonly string[] };

export type Selector = readonly Requirement[];

export class SelectorParseError extends Error {
  override name = 'SelectorParseError';
  constructor(
    readonly position: number,
    readonly detail: string,
  ) {
    super(`${detail} at position ${position}`);
  }
}

const LABEL = /^[A-Za-z0-9]([A-Za-z0-9._/-]*[A-Za-z0-9])?$/;

export function parseSelector(text: string): Selector {
  const out: Requirement[] = [];
  if (text.trim() === '') return out;
  let pos = 0;
  for (const part of text.split(',')) {
    const eq = part.indexOf('=');
    if (eq < 0) throw new SelectorParseError(pos, `expected key=value in "${part.trim()}"`);
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (!LABEL.test(key)) throw new SelectorParseError(pos, `bad label key "${key}"`);
    if (!LABEL.test(value)) throw new SelectorParseError(pos + eq + 1, `bad label value "${value}"`);
    out.push({ key, op: '=', values: [value] });
    pos += part.length + 1;
  }
  return out;
}

export function matches(selector: Selector, labels: Readonly<Record<string, string>>): boolean {
  return selector.every((r) => r.values.includes(labels[r.key] ?? '\u0000'));
}
