/**
 * How an agent advertises the executors it offers: one label per executor,
 * `runmesh.io/executor-<name>=true`, set by the agent from what its executor
 * found on the host. A label and not a field of its own, so the selector
 * grammar and the router's label index serve it unchanged, and so a job can
 * also select on it (`--selector runmesh.io/executor-sandbox`). The
 * `runmesh.io/` prefix is reserved: an operator's `--labels` and a join
 * token's labels may not use it. An agent can only claim a capability this
 * way; one that claims sandbox without it fails the sandbox jobs it gets.
 */
import { Executor } from './gen/runmesh/v1/job.js';

/** Label keys under this prefix are the agent's own report of itself. */
export const RESERVED_LABEL_PREFIX = 'runmesh.io/';

const EXECUTOR_LABEL_PREFIX = `${RESERVED_LABEL_PREFIX}executor-`;

/** The value every executor label carries. */
export const EXECUTOR_LABEL_VALUE = 'true';

/** The executors by the name their label and the CLI use; UNSPECIFIED reads as shell. */
export type ExecutorName = 'shell' | 'sandbox';

const NAMES: ReadonlyMap<Executor, ExecutorName> = new Map([
  [Executor.EXECUTOR_SHELL, 'shell'],
  [Executor.EXECUTOR_SANDBOX, 'sandbox'],
]);

/** `EXECUTOR_SANDBOX` → `sandbox`; UNSPECIFIED (and anything unknown) → `shell`. */
export const executorName = (e: Executor): ExecutorName => NAMES.get(e) ?? 'shell';

/** `sandbox` → `EXECUTOR_SANDBOX`. */
export const executorOf = (name: ExecutorName): Executor => (name === 'sandbox' ? Executor.EXECUTOR_SANDBOX : Executor.EXECUTOR_SHELL);

/** `sandbox` → `runmesh.io/executor-sandbox`. */
export const executorLabel = (name: ExecutorName): string => EXECUTOR_LABEL_PREFIX + name;

/** The labels an agent offering `names` advertises. */
export function executorLabels(names: readonly ExecutorName[]): Record<string, string> {
  return Object.fromEntries(names.map((n) => [executorLabel(n), EXECUTOR_LABEL_VALUE]));
}

/** The executors an agent's labels advertise, in enum order. */
export function executorsIn(labels: Readonly<Record<string, string>>): Executor[] {
  return [...NAMES].filter(([, name]) => labels[executorLabel(name)] === EXECUTOR_LABEL_VALUE).map(([e]) => e);
}

/** True for a label key only the agent itself may set. */
export const isReservedLabel = (key: string): boolean => key.startsWith(RESERVED_LABEL_PREFIX);
