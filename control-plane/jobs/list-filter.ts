/**
 * What a job list may be narrowed by, besides state, name and tenant: the
 * agent labels a job requires, and when it was submitted. Submission time is
 * a key range (job ids sort by it, `idBoundAt`), so a time window is read,
 * not scanned.
 */
import { parseSelector, SelectorParseError, type Selector } from '../../routing/index.js';

/** Requirements a labels filter may hold: `key=value` and `key`. */
export type LabelFilter = Selector;

/**
 * Parses a labels filter (`os=linux,gpu`); throws `SelectorParseError` on bad
 * syntax and a plain `Error` naming the term for an operator other than `=`
 * or a bare key.
 */
export function parseLabelFilter(text: string): LabelFilter {
  const terms = parseSelector(text);
  for (const t of terms) {
    if (t.op !== '=' && t.op !== 'exists') throw new Error(`only key=value and key terms filter jobs, not ${t.op} (${t.key})`);
  }
  return terms;
}

/**
 * Whether a job's selector requires every label in `wanted`: a `key=value`
 * term is required by the selector's `key=value` or by a `key in (...)` that
 * names the value; a bare `key` by any positive term on the key.
 */
export function requiresLabels(selector: Selector, wanted: LabelFilter): boolean {
  return wanted.every((w) =>
    selector.some((term) => {
      if (term.key !== w.key) return false;
      if (w.op === 'exists') return term.op === '=' || term.op === 'in' || term.op === 'exists';
      return (term.op === '=' || term.op === 'in') && term.values.includes(w.values[0] ?? '');
    }),
  );
}

/** `requiresLabels` on a stored job's selector text; one that no longer parses requires nothing. */
export function selectorRequires(selector: string, wanted: LabelFilter): boolean {
  try {
    return requiresLabels(parseSelector(selector), wanted);
  } catch (err) {
    if (err instanceof SelectorParseError) return false;
    throw err;
  }
}
