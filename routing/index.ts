/** routing/: pure placement (snapshots, selectors, QoS, strategies). No I/O, no timers, no store. */
export * from './types.js';
export { Router, snapshotOf, type ClusterSnapshot } from './router.js';
export { parseSelector, matches, SelectorParseError, type Selector } from './selector.js';
