/**
 * agent/artifacts/: an attempt's artifacts (JobSpec.artifacts), uploaded
 * after it exited and before its result. find.ts says which workspace files
 * the globs name (regular files only, links never followed) and what each is;
 * plan.ts keeps the globs beside the attempt for an agent restarted
 * mid-attempt; upload.ts sends them over the agent's connection (Begin,
 * each file from what the peer holds, Commit), resuming across reconnects.
 */
export { ArtifactsError, isArtifactsError } from './errors.js';
export { findArtifacts, describeArtifact, MAX_FILES, type FoundFile } from './find.js';
export { ArtifactPlans, planOf, type ArtifactPlan } from './plan.js';
export { uploadArtifacts, CHUNK_BYTES, MAX_TRIES, type UploadLinks, type UploadRequest } from './upload.js';
