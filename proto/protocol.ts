/** Wire protocol version spoken on AgentService.Connect; bumped on incompatible changes. */
export const PROTOCOL_VERSION = 1;
