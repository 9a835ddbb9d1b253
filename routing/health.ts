/**
 * Per-agent health as the router sees it: an EWMA of dispatch latency and of
 * the infrastructure-failure rate (both lower an agent's score), and a
 * circuit breaker. The breaker opens after `failureThreshold` consecutive
 * infra failures, skips the agent while open, turns half-open after
 * `coolDownMs` and then admits exactly one probe placement: a probe success
 * closes it, a probe failure opens it again. Pure: callers pass `now` (ms).
 */
import { RoutingOptionError } from './errors.js';

export type BreakerState = 'closed' | 'open' | 'half-open';

/** What the router may do with an agent now. */
export type Admission = 'admit' | 'probe' | 'skip';

export interface HealthOptions {
  /** Consecutive infra failures that open the breaker. Default 3. */
  failureThreshold?: number;
  /** How long the breaker stays open before a probe is allowed (ms). Default 30 000. */
  coolDownMs?: number;
  /** EWMA smoothing factor in (0, 1]. Default 0.2. */
  alpha?: number;
  /** Dispatch latency that costs half a point of score (ms). Default 1 000. */
  latencyRefMs?: number;
}

type Resolved = Required<HealthOptions>;

interface AgentHealth {
  state: BreakerState;
  consecutive: number;
  failureRate: number;
  latencyMs: number | undefined;
  openedAt: number;
  /** When the half-open probe was placed; a probe with no result for a cool-down may be replaced. */
  probeAt: number | undefined;
}

const LEGAL: Record<BreakerState, readonly BreakerState[]> = {
  closed: ['open'],
  open: ['half-open', 'open'],
  'half-open': ['closed', 'open'],
};

function resolve(o: HealthOptions): Resolved {
  const r = { failureThreshold: 3, coolDownMs: 30_000, alpha: 0.2, latencyRefMs: 1_000, ...o };
  if (!Number.isInteger(r.failureThreshold) || r.failureThreshold < 1)
    throw new RoutingOptionError('failureThreshold', 'must be an integer >= 1');
  if (!(r.coolDownMs >= 0)) throw new RoutingOptionError('coolDownMs', 'must be >= 0');
  if (!(r.alpha > 0 && r.alpha <= 1)) throw new RoutingOptionError('alpha', 'must be in (0, 1]');
  if (!(r.latencyRefMs > 0)) throw new RoutingOptionError('latencyRefMs', 'must be > 0');
  return r;
}

export class HealthTracker {
  private readonly o: Resolved;
  private readonly agents = new Map<string, AgentHealth>();
  private latest = 0;

  constructor(options: HealthOptions = {}) {
    this.o = resolve(options);
  }

  /** The latest `now` any call passed: the router's clock when `decide` is given none. */
  get lastSeen(): number {
    return this.latest;
  }

  /** A dispatch to `agent` took `latencyMs` (assign sent → agent acknowledged). */
  recordDispatch(agent: string, latencyMs: number, now: number): void {
    this.tick(now);
    const h = this.entry(agent);
    h.latencyMs = h.latencyMs === undefined ? latencyMs : h.latencyMs + this.o.alpha * (latencyMs - h.latencyMs);
  }

  /** An attempt on `agent` ended; `infraFailure` when the agent or its host failed, not the job. */
  recordResult(agent: string, infraFailure: boolean, now: number): void {
    this.tick(now);
    const h = this.entry(agent);
    h.failureRate += this.o.alpha * ((infraFailure ? 1 : 0) - h.failureRate);
    h.consecutive = infraFailure ? h.consecutive + 1 : 0;
    this.refresh(h, now);
    if (h.state === 'half-open') this.transition(h, infraFailure ? 'open' : 'closed', now);
    else if (h.state === 'closed' && h.consecutive >= this.o.failureThreshold) this.transition(h, 'open', now);
    else if (h.state === 'open' && infraFailure) h.openedAt = now;
  }

  /** The breaker's state at `now`. */
  state(agent: string, now: number): BreakerState {
    const h = this.agents.get(agent);
    if (!h) return 'closed';
    this.refresh(h, now);
    return h.state;
  }

  /** Whether the router may place on `agent` now: freely, as the one probe, or not at all. */
  admission(agent: string, now: number): Admission {
    const h = this.agents.get(agent);
    if (!h) return 'admit';
    this.refresh(h, now);
    if (h.state === 'closed') return 'admit';
    if (h.state === 'open') return 'skip';
    const probeLive = h.probeAt !== undefined && now - h.probeAt < this.o.coolDownMs;
    return probeLive ? 'skip' : 'probe';
  }

  /** The router placed the half-open probe on `agent`; no other placement until its result. */
  beginProbe(agent: string, now: number): void {
    this.tick(now);
    const h = this.agents.get(agent);
    if (h && this.admission(agent, now) === 'probe') h.probeAt = now;
  }

  /** Score cost in [0, 1.5]: the failure rate plus up to half a point for slow dispatches. */
  penalty(agent: string): number {
    const h = this.agents.get(agent);
    if (!h) return 0;
    return h.failureRate + 0.5 * Math.min(1, (h.latencyMs ?? 0) / this.o.latencyRefMs);
  }

  /** Agents with any recorded history (the rest are healthy by default). */
  known(): IterableIterator<string> {
    return this.agents.keys();
  }

  /** Drops an agent's history (it left the cluster for good). */
  forget(agent: string): void {
    this.agents.delete(agent);
  }

  private entry(agent: string): AgentHealth {
    let h = this.agents.get(agent);
    if (!h) {
      h = { state: 'closed', consecutive: 0, failureRate: 0, latencyMs: undefined, openedAt: 0, probeAt: undefined };
      this.agents.set(agent, h);
    }
    return h;
  }

  /** Open → half-open is time-driven, so it is applied lazily whenever the state is read. */
  private refresh(h: AgentHealth, now: number): void {
    if (h.state === 'open' && now - h.openedAt >= this.o.coolDownMs) this.transition(h, 'half-open', now);
  }

  private transition(h: AgentHealth, to: BreakerState, now: number): void {
    if (!LEGAL[h.state].includes(to)) throw new Error(`illegal breaker transition ${h.state} -> ${to}`);
    h.state = to;
    h.probeAt = undefined;
    if (to === 'open') h.openedAt = now;
    if (to === 'closed') h.consecutive = 0;
  }

  private tick(now: number): void {
    if (now > this.latest) this.latest = now;
  }
}
