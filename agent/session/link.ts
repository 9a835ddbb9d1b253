/** What an attempt needs of the live connection: a way to send, and to know it dropped. */
import type { AgentServiceClient, ConnectRequest } from '../../proto/gen/runmesh/v1/agent.js';

export interface Link {
  /** Aborted when this connection ends. */
  readonly signal: AbortSignal;
  /** Queues a message; false when the connection's buffer is full (wait for `drained`). */
  send(msg: ConnectRequest): boolean;
  drained(): Promise<void>;
  /** What the control plane said it takes beyond the base protocol (its `runmesh-accepts` response header); absent: nothing. */
  readonly features?: ReadonlySet<string>;
  /** AgentService on this connection's channel, for the calls beside Connect (artifact uploads): same transport, closed with it. */
  readonly client: AgentServiceClient;
}
