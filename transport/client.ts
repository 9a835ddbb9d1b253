/**
 * Client side of the transports, for the agent session and the CLI:
 * parse an address, dial it, or walk an ordered fallback list.
 *
 *   const dialer = await new FallbackDialer(addresses, { logger }).next(signal);
 *   const client = new AgentClient(dialer.target, dialer.credentials, dialer.channelOptions);
 *   ...
 *   client.close(); await dialer.close();
 *
 * See dial.ts for proxy handling and ws-bridge.ts for how ws/wss reach grpc-js.
 */
export { parseAddress, type Target, type Scheme } from './address.js';
export { dial, type Dialer, type DialOptions } from './dial.js';
export { FallbackDialer, type FallbackOptions } from './fallback.js';
