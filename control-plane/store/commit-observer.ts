/**
 * What a store tells its observer about each commit: how long the write took
 * (the embedded store's lmdb transaction and fsync, an etcd Txn's round trip)
 * and how many callers' transactions it carried (group commit merges them).
 * /metrics turns these into the store latency and batch size histograms.
 */
export interface CommitObservation {
  /** Wall time of the write, in seconds. */
  seconds: number;
  /** Transactions the write carried (1 when it ran alone). */
  txns: number;
  /** False when the write failed (a store error, or a merged etcd txn whose compares did not all hold). */
  ok: boolean;
}

export type CommitObserver = (c: CommitObservation) => void;

/** An observer that records nothing (the default). */
export const IGNORE_COMMITS: CommitObserver = () => {};

/** Seconds since `start` (from `performance.now()`). */
export const secondsSince = (start: number): number => (performance.now() - start) / 1000;
