/**
 * Label selectors, Kubernetes-style: comma-separated requirements
 * `key=value`, `key==value`, `key!=value`, `key in (a,b)`, `key notin (a,b)`,
 * `key` (exists) and `!key` (does not exist). Whitespace is free between
 * tokens. Negative requirements match agents that lack the key, as in
 * Kubernetes. Parse errors carry the 0-based position of the fault.
 */
import { SelectorParseError } from './errors.js';

export { SelectorParseError } from './errors.js';

export type Operator = '=' | '!=' | 'in' | 'notin' | 'exists' | '!exists';

export interface Requirement {
  readonly key: string;
  readonly op: Operator;
  /** Empty for `exists` and `!exists`. */
  readonly values: readonly string[];
}

export type Selector = readonly Requirement[];

export const MAX_KEY_CHARS = 253;
export const MAX_VALUE_CHARS = 63;

const LABEL = /^[A-Za-z0-9]([A-Za-z0-9._/-]*[A-Za-z0-9])?$/;
const TOKEN_CHAR = /[A-Za-z0-9._/-]/;

/** A cursor over the selector text; every failure names where it happened. */
class Scanner {
  pos = 0;
  constructor(readonly text: string) {}

  skipSpace(): void {
    while (this.pos < this.text.length && /\s/.test(this.text[this.pos] ?? '')) this.pos++;
  }

  peek(): string {
    return this.text[this.pos] ?? '';
  }

  atEnd(): boolean {
    return this.pos >= this.text.length;
  }

  fail(detail: string, at = this.pos): never {
    throw new SelectorParseError(at, detail);
  }

  /** Reads a run of label characters (may be empty). */
  word(): { text: string; at: number } {
    const at = this.pos;
    while (this.pos < this.text.length && TOKEN_CHAR.test(this.text[this.pos] ?? '')) this.pos++;
    return { text: this.text.slice(at, this.pos), at };
  }

  expect(ch: string, what: string): void {
    this.skipSpace();
    if (this.peek() !== ch) this.fail(`expected ${what}${this.found()}`);
    this.pos++;
  }

  found(): string {
    return this.atEnd() ? ', found end of input' : `, found "${this.peek()}"`;
  }
}

function label(s: Scanner, kind: 'key' | 'value'): string {
  s.skipSpace();
  const { text, at } = s.word();
  if (text === '') s.fail(`expected label ${kind}${s.found()}`);
  const max = kind === 'key' ? MAX_KEY_CHARS : MAX_VALUE_CHARS;
  if (text.length > max) s.fail(`label ${kind} "${text.slice(0, 16)}..." is longer than ${max} characters`, at);
  if (!LABEL.test(text)) s.fail(`bad label ${kind} "${text}": must start and end with a letter or digit`, at);
  return text;
}

function valueList(s: Scanner): string[] {
  s.expect('(', '"(" to open the value list');
  const values = [label(s, 'value')];
  for (;;) {
    s.skipSpace();
    if (s.peek() === ')') break;
    s.expect(',', '"," or ")" in the value list');
    values.push(label(s, 'value'));
  }
  s.pos++;
  return values;
}

/** After the key: an operator with its values, or nothing (exists). */
function operator(s: Scanner, key: string): Requirement {
  s.skipSpace();
  const c = s.peek();
  if (s.atEnd() || c === ',') return { key, op: 'exists', values: [] };
  if (c === '=') {
    s.pos += s.text[s.pos + 1] === '=' ? 2 : 1;
    return { key, op: '=', values: [label(s, 'value')] };
  }
  if (c === '!') {
    if (s.text[s.pos + 1] !== '=') s.fail('expected "!=" after the key');
    s.pos += 2;
    return { key, op: '!=', values: [label(s, 'value')] };
  }
  const { text, at } = s.word();
  if (text === 'in' || text === 'notin') return { key, op: text, values: valueList(s) };
  return s.fail(`expected an operator (=, !=, in, notin) or ","${text ? `, found "${text}"` : s.found()}`, at);
}

function requirement(s: Scanner): Requirement {
  s.skipSpace();
  if (s.peek() === '!') {
    s.pos++;
    return { key: label(s, 'key'), op: '!exists', values: [] };
  }
  return operator(s, label(s, 'key'));
}

/** Parses selector text; empty or blank text selects every agent. Throws SelectorParseError. */
export function parseSelector(text: string): Selector {
  const s = new Scanner(text);
  s.skipSpace();
  if (s.atEnd()) return [];
  const out: Requirement[] = [requirement(s)];
  for (;;) {
    s.skipSpace();
    if (s.atEnd()) return out;
    s.expect(',', '"," between requirements');
    out.push(requirement(s));
  }
}

/** True when one requirement holds for `labels`. */
export function holds(r: Requirement, labels: Readonly<Record<string, string>>): boolean {
  const v = Object.hasOwn(labels, r.key) ? labels[r.key] : undefined;
  switch (r.op) {
    case '=':
    case 'in':
      return v !== undefined && r.values.includes(v);
    case '!=':
    case 'notin':
      return v === undefined || !r.values.includes(v);
    case 'exists':
      return v !== undefined;
    case '!exists':
      return v === undefined;
  }
}

/** True when every requirement holds (the empty selector matches everything). */
export function matches(selector: Selector, labels: Readonly<Record<string, string>>): boolean {
  for (const r of selector) if (!holds(r, labels)) return false;
  return true;
}

/** Canonical text for a selector; `parseSelector(formatSelector(s))` gives `s` back. */
export function formatSelector(selector: Selector): string {
  return selector
    .map((r) => {
      switch (r.op) {
        case 'exists':
          return r.key;
        case '!exists':
          return `!${r.key}`;
        case 'in':
        case 'notin':
          return `${r.key} ${r.op} (${r.values.join(',')})`;
        default:
          return `${r.key}${r.op}${r.values[0] ?? ''}`;
      }
    })
    .join(',');
}
