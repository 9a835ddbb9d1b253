/**
 * routing/: pure placement. An immutable, indexed cluster snapshot plus the
 * queued jobs go in; placements, preemptions and waiting reasons come out.
 * Label selectors, QoS classes, weighted fair share, spread / binpack /
 * affinity strategies, and per-agent health with circuit breakers. No I/O,
 * no timers, no clock reads, no store: callers pass `now` where time matters.
 */
export * from './types.js';
export { Router, type RouterOptions } from './router.js';
export { ClusterSnapshot, snapshotOf, type CandidateSet } from './snapshot.js';
export {
  parseSelector,
  matches,
  formatSelector,
  holds,
  SelectorParseError,
  type Selector,
  type Requirement,
  type Operator,
} from './selector.js';
export { HealthTracker, type HealthOptions, type BreakerState, type Admission } from './health.js';
export { RoutingOptionError, isSelectorParseError, isRoutingOptionError } from './errors.js';
export { xorshift32, type RandomSource } from './random.js';
export { UNSCHEDULABLE } from './reasons.js';
export { backlogByLabelSet, type Backlog, type LabelSetBacklog } from './backlog.js';
