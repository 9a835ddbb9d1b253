/**
 * Template placeholders: `${{ params.NAME }}` (GitHub Actions' expression
 * syntax, limited to a parameter reference), replaced inside string values
 * only, after the YAML is parsed: a value can never become YAML structure
 * (a key, a list, a second job), whatever it holds. No escaping is needed or
 * offered: text that is not a placeholder is left as it is.
 */
export const PLACEHOLDER = /\$\{\{\s*params\.([A-Za-z_][A-Za-z0-9_-]*)\s*\}\}/g;

/** The parameter names `text` refers to, in order, each once. */
export function referencedParams(text: string): string[] {
  return [...new Set([...text.matchAll(PLACEHOLDER)].map((m) => m[1]!))];
}

/** `text` with each placeholder replaced by its parameter's value (every one it names must be in `values`). */
export function fillPlaceholders(text: string, values: ReadonlyMap<string, string>): string {
  return text.replace(PLACEHOLDER, (_m, name: string) => values.get(name) ?? '');
}
