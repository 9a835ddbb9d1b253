/**
 * AgentService: accepts agent streams on this peer, publishes each connected
 * agent to the mesh-wide directory (under this peer's lease, so the entry
 * dies with the peer), and delivers assignments, cancels and drains to the
 * agents it holds. Deciding that an agent is lost is the leader's job (see
 * Scheduler), so that a dead peer's agents are handled like any other.
 */
import { status as Status, type Server, type ServerDuplexStream, type UntypedServiceImplementation } from '@grpc/grpc-js';
import {
  AgentServiceService,
  type Assign,
  type Cancel,
  type ConnectRequest,
  type ConnectResponse,
  type Drain,
  type Hello,
} from '../../proto/gen/runmesh/v1/agent.js';
import type { GatewayContext } from './context.js';
import { announcedLoad, type AgentEntry, type AgentLink } from './registry.js';
import { AgentSession } from './session.js';

/** Where connected agents are announced to the mesh. */
export interface AgentPublisher {
  publish(entry: AgentEntry): Promise<unknown>;
  unpublish(name: string): Promise<unknown>;
}

/** Tells of agents' credentials deleted or replaced on any peer (revocations, rotations), and of rotations asked for. */
export interface Revocations {
  onRevoked(listener: (name: string, hash: string) => void): () => void;
  onRotateRequested(listener: (name: string) => void): () => void;
}

export type GatewayOptions = Omit<GatewayContext, 'onConnect' | 'onDisconnect' | 'claim'> & {
  /** Where connected agents are announced (the mesh-wide directory). */
  publisher: AgentPublisher;
  /** The peer holding the agent's stream, per the mesh-wide directory (undefined: none). */
  holderOf(name: string): string | undefined;
  revocations: Revocations;
  /** How often connected agents' credentials are checked for a rotation due. */
  rotationCheckMs: number;
};

export class Gateway {
  private readonly ctx: GatewayContext;
  private readonly sessions = new Set<AgentSession>();
  private readonly publisher: AgentPublisher;
  private readonly changeListeners = new Set<() => void>();
  /** What was last announced per connected agent (its draining flag and load). */
  private readonly published = new Map<string, string>();
  /** Per agent name, the one session (connecting or connected) that holds its identity here. */
  private readonly claims = new Map<string, AgentLink>();
  private closed = false;
  private readonly rotationTimer: NodeJS.Timeout;

  constructor(private readonly o: GatewayOptions) {
    this.publisher = o.publisher;
    this.ctx = {
      ...o,
      claim: (n, l) => this.claim(n, l),
      onConnect: (h, l) => this.onConnect(h, l),
      onDisconnect: (n, l) => this.onDisconnect(n, l),
    };
    o.registry.onChange(() => this.republishChanged());
    o.revocations.onRevoked((name, hash) => this.revoked(name, hash));
    o.revocations.onRotateRequested((name) => this.rotateIfDue(name));
    this.rotationTimer = setInterval(() => this.rotateIfDue(), o.rotationCheckMs);
    this.rotationTimer.unref();
  }

  /** Rotates the credentials due of the agents connected here (or of `name` only). */
  private rotateIfDue(name?: string): void {
    for (const s of this.sessions) if (name === undefined || s.agentName === name) void s.rotateIfDue();
  }

  /** Calls `listener` whenever an agent connects or leaves this peer. Returns the unsubscribe. */
  onAgentsChanged(listener: () => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  private agentsChanged(): void {
    for (const listener of this.changeListeners) listener();
  }

  /** Adds AgentService: Connect, and `more` of its methods served elsewhere (the artifact uploads). */
  addToServer(server: Server, more: UntypedServiceImplementation = {}): void {
    server.addService(AgentServiceService, {
      ...more,
      connect: (call: ServerDuplexStream<ConnectRequest, ConnectResponse>) => this.connect(call),
    });
  }

  private connect(call: ServerDuplexStream<ConnectRequest, ConnectResponse>): void {
    if (this.closed) {
      call.emit('error', { code: Status.UNAVAILABLE, details: 'control plane is shutting down' });
      return;
    }
    const s = new AgentSession(call, this.ctx);
    this.sessions.add(s);
    call.on('close', () => this.sessions.delete(s));
  }

  private claim(name: string, link: AgentLink): string | undefined {
    const held = this.claims.get(name);
    if (held && held !== link) {
      const e = this.o.registry.get(name);
      const silentMs = e?.link === held ? Date.now() - e.lastHeartbeat.getTime() : 0;
      if (silentMs <= this.o.heartbeatTimeoutMs) return `agent ${name} already has a live session on this peer`;
      held.close('silent past its heartbeat timeout: replaced by a new session of the same agent');
    }
    const holder = this.o.holderOf(name);
    if (holder !== undefined && holder !== this.o.peerId) return `agent ${name} already has a live session on peer ${holder}`;
    this.claims.set(name, link);
    return undefined;
  }

  /** Ends the streams (connected or connecting) that presented a credential just deleted. */
  private revoked(name: string, hash: string): void {
    for (const s of this.sessions) {
      if (s.agentName !== name || s.credentialHash !== hash) continue;
      this.o.logger.warn({ audit: true, agent_id: name, session_id: s.sessionId }, 'agent credential revoked: ending its stream');
      s.close('agent credential revoked', Status.UNAUTHENTICATED);
    }
  }

  private onConnect(hello: Hello, link: AgentLink): void {
    const replaced = this.o.registry.connect(hello, link, new Date());
    replaced?.close('replaced by a newer session of the same agent');
    this.publish(hello.name);
    this.agentsChanged();
  }

  private onDisconnect(name: string, link: AgentLink): void {
    if (this.claims.get(name) === link) this.claims.delete(name);
    if (!this.o.registry.disconnect(name, link)) return;
    this.published.delete(name);
    void this.publisher.unpublish(name).catch((err: unknown) => this.o.logger.warn({ err, agent_id: name }, 'could not unpublish agent'));
    this.agentsChanged();
  }

  private publish(name: string): void {
    const e = this.o.registry.get(name);
    if (!e?.link) return;
    this.published.set(name, announced(e));
    void this.publisher.publish(e).catch((err: unknown) => this.o.logger.warn({ err, agent_id: name }, 'could not publish agent'));
  }

  /** Re-announces agents whose draining state or load changed (every peer's scheduler reads them from the directory). */
  private republishChanged(): void {
    for (const e of this.o.registry.all()) {
      if (e.link && this.published.has(e.name) && this.published.get(e.name) !== announced(e)) this.publish(e.name);
    }
  }

  private send(agent: string, msg: ConnectResponse['msg']): boolean {
    const link = this.o.registry.get(agent)?.link;
    return !!link?.send({ msg });
  }

  deliverAssign(agent: string, assign: Assign): boolean {
    return this.send(agent, { $case: 'assign', value: assign });
  }

  deliverCancel(agent: string, cancel: Cancel): boolean {
    return this.send(agent, { $case: 'cancel', value: cancel });
  }

  deliverDrain(agent: string, drain: Drain): boolean {
    this.o.registry.setDraining(agent);
    return this.send(agent, { $case: 'drain', value: drain });
  }

  /** Ends every agent stream; agents reconnect to another peer or later. */
  close(): void {
    this.closed = true;
    clearInterval(this.rotationTimer);
    for (const s of this.sessions) s.close('control plane is shutting down');
  }
}

/** What the directory shows of a connected agent that its session can change. */
function announced(e: AgentEntry): string {
  return `${e.draining}/${e.unhealthy}/${announcedLoad(e.load)}`;
}
