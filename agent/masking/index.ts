/**
 * agent/masking/: keeps an attempt's secret values out of what leaves the
 * host. forms.ts lists the byte strings to mask (values, their lines, their
 * encodings); matcher.ts finds them without deciding on unseen bytes;
 * records.ts masks spool records as they stream, across record boundaries,
 * keeping every record's number; saved.ts keeps an attempt's values beside
 * it so a restarted agent masks what it resumes.
 */
import { maskForms } from './forms.js';
import { Matcher } from './matcher.js';

export { maskForms } from './forms.js';
export { Matcher, maskText, REPLACEMENT } from './matcher.js';
export { RecordMasker } from './records.js';

/** The matcher for an attempt's secret values (none: an empty matcher, which masks nothing). */
export const matcherFor = (values: Iterable<string>): Matcher => new Matcher(maskForms(values));
export { saveMasks, loadMasks, dropMasks, sweepMasks } from './saved.js';

/** What an attempt's Assign gives the job that must never leave the host: its secrets' values, and its job token. */
export function secretValuesOf(a: {
  readonly secretEnv: Readonly<Record<string, string>>;
  readonly secretFiles: ReadonlyArray<{ readonly content: string }>;
  readonly jobToken: string;
}): string[] {
  return [...Object.values(a.secretEnv), ...a.secretFiles.map((f) => f.content), a.jobToken].filter((v) => v !== '');
}
