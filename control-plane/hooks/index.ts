/**
 * control-plane/hooks/: webhooks both ways. hook-store.ts keeps hooks (their
 * secrets sealed by the secrets key ring); inbound.ts is `POST /hooks/NAME`,
 * verified by signature.ts, deduplicated by replay.ts, its payload mapped to
 * template parameters by param-map.ts; outbound.ts sends job and agent
 * events (outbound-events.ts) to hooks' URLs, recorded by deliveries.ts.
 */
export { HookStore, isHooksFull, isNoHookKey, NoHookKeyError, MAX_HOOKS, MAX_HOOKS_PER_TENANT } from './hook-store.js';
export { Deliveries, HISTORY } from './deliveries.js';
export { ReplayWindow, DEFAULT_REPLAY, type ReplayOptions } from './replay.js';
export { inboundRoute, HOOK_PATH, SIGNED_ROUTES, DEFAULT_INBOUND, type InboundLimits } from './inbound.js';
export { OutboundHooks, DEFAULT_RETRY, type RetryOptions } from './outbound.js';
export { EVENTS, checkUrl, checkEvents } from './outbound-events.js';
export { parseParamMap } from './param-map.js';
export { sign, signedContent, verify, HEADERS } from './signature.js';
