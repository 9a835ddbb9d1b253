/**
 * An attempt's artifact plan: what its Assign asked to upload, kept beside
 * it (attempt-notes.ts) from before it starts until the control plane has its
 * result, so that an agent restarted after a kill -9 uploads the artifacts of
 * the attempts it recovers (their Assign is not sent again).
 */
import type { JobSpec } from '../../proto/gen/runmesh/v1/job.js';
import { AttemptNotes } from '../attempt-notes.js';

export interface ArtifactPlan {
  /** JobSpec.artifacts, validated at submit. */
  readonly globs: readonly string[];
  /** JobSpec.artifacts_optional: a failed upload leaves the job's outcome as it was. */
  readonly optional: boolean;
  /**
   * Workspace paths never uploaded, whatever the globs: the attempt's secret
   * files (`--secret-file`), which a glob such as `**` would otherwise carry,
   * unmasked, to everyone who may read the job.
   */
  readonly withheld: readonly string[];
}

/** The plan of a spec that names artifacts; undefined when it names none. `secretFiles`: the Assign's, whose paths are withheld. */
export function planOf(
  spec: Pick<JobSpec, 'artifacts' | 'artifactsOptional'> | undefined,
  secretFiles: ReadonlyArray<{ readonly path: string }> = [],
): ArtifactPlan | undefined {
  if (!spec || spec.artifacts.length === 0) return undefined;
  return { globs: [...spec.artifacts], optional: spec.artifactsOptional, withheld: secretFiles.map((f) => f.path) };
}

/** The plans saved in a work dir, by attempt key (`jobId/attempt`). */
export class ArtifactPlans {
  private readonly notes: AttemptNotes<ArtifactPlan>;

  constructor(workDir: string) {
    this.notes = new AttemptNotes(workDir, 'artifacts');
  }

  /** Durably, before the attempt starts; an attempt without artifacts saves nothing. */
  save(key: string, plan: ArtifactPlan | undefined): void {
    if (plan) this.notes.save(key, plan);
  }

  /** The plan saved for `key`; undefined when its attempt has no artifacts. A file that is not a plan throws. */
  load(key: string): ArtifactPlan | undefined {
    const plan = this.notes.load(key);
    if (plan === undefined) return undefined;
    const strings = (v: unknown): boolean => Array.isArray(v) && v.every((g) => typeof g === 'string');
    if (!strings(plan.globs) || !strings(plan.withheld) || typeof plan.optional !== 'boolean')
      throw new Error(`the artifact plan of ${key} is not one this agent wrote`);
    return plan;
  }

  drop(key: string): void {
    this.notes.drop(key);
  }

  /** Drops the plans of attempts no longer on disk (`keep`: the keys of those that are). */
  sweep(keep: ReadonlySet<string>): void {
    this.notes.sweep(keep);
  }
}
