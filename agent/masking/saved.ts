/**
 * An attempt's secret values, kept beside the agent's work so that an agent
 * restarted mid-attempt masks what it resumes sending: the Assign that
 * carried them is not sent again. A note per attempt (attempt-notes.ts) on
 * the host, like the attempt's spec.json, which holds the same values as its
 * environment.
 */
import { AttemptNotes } from '../attempt-notes.js';

const notes = (workDir: string): AttemptNotes<string[]> => new AttemptNotes(workDir, 'masks');

/** Saves `values` for the attempt `key` (jobId/attempt), durably; none saves nothing. */
export function saveMasks(workDir: string, key: string, values: readonly string[]): void {
  if (values.length > 0) notes(workDir).save(key, [...values]);
}

/** The values saved for `key`; none when nothing was (an attempt without secrets). Unreadable throws: the attempt must not stream unmasked. */
export function loadMasks(workDir: string, key: string): string[] {
  return notes(workDir).load(key) ?? [];
}

export function dropMasks(workDir: string, key: string): void {
  notes(workDir).drop(key);
}

/** Removes the files of attempts no longer on disk (`keep`: the keys of those that are). */
export function sweepMasks(workDir: string, keep: ReadonlySet<string>): void {
  notes(workDir).sweep(keep);
}
