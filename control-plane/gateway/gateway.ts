/**
 * AgentService: accepts agent streams and is the scheduler's Dispatcher for
 * agents connected to this peer. Owns the "agent lost" rule: an agent that
 * stays disconnected past the heartbeat timeout loses its active attempts,
 * which are re-queued (or finished) through the job lifecycle.
 */
import type { Server, ServerDuplexStream } from '@grpc/grpc-js';
import { AgentServiceService, type ConnectRequest, type ConnectResponse, type Hello } from '../../proto/gen/runmesh/v1/agent.js';
import type { JobRecord } from '../jobs/record.js';
import { lost } from '../jobs/lifecycle.js';
import type { Dispatcher } from '../scheduler/scheduler.js';
import type { GatewayContext } from './context.js';
import type { AgentLink } from './registry.js';
import { AgentSession } from './session.js';

export type GatewayOptions = Omit<GatewayContext, 'onConnect' | 'onDisconnect'> & { onAgentsChanged(): void };

export class Gateway implements Dispatcher {
  private readonly ctx: GatewayContext;
  private readonly lostTimers = new Map<string, NodeJS.Timeout>();
  private readonly sessions = new Set<AgentSession>();
  private closed = false;

  constructor(private readonly o: GatewayOptions) {
    this.ctx = { ...o, onConnect: (h, l) => this.onConnect(h, l), onDisconnect: (n, l) => this.onDisconnect(n, l) };
  }

  addToServer(server: Server): void {
    server.addService(AgentServiceService, { connect: (call: ServerDuplexStream<ConnectRequest, ConnectResponse>) => this.connect(call) });
  }

  /** After a restart: agents holding active attempts get one timeout to come back. */
  start(): void {
    const agents = new Set([...this.o.tracker.values()].map((v) => this.o.index.attemptOf(v.record.job.id)?.agent).filter((a): a is string => !!a));
    for (const name of agents) this.armLost(name);
  }

  private connect(call: ServerDuplexStream<ConnectRequest, ConnectResponse>): void {
    if (this.closed) {
      call.emit('error', { code: 14, details: 'control plane is shutting down' });
      return;
    }
    const s = new AgentSession(call, this.ctx);
    this.sessions.add(s);
    call.on('close', () => this.sessions.delete(s));
  }

  private onConnect(hello: Hello, link: AgentLink): void {
    clearTimeout(this.lostTimers.get(hello.name));
    this.lostTimers.delete(hello.name);
    const replaced = this.o.registry.connect(hello, link, new Date());
    replaced?.close('replaced by a newer session of the same agent');
    this.o.onAgentsChanged();
  }

  private onDisconnect(name: string, link: AgentLink): void {
    if (!this.o.registry.disconnect(name, link)) return;
    this.armLost(name);
    this.o.onAgentsChanged();
  }

  private armLost(name: string): void {
    clearTimeout(this.lostTimers.get(name));
    const t = setTimeout(() => void this.agentLost(name), this.o.heartbeatTimeoutMs);
    t.unref();
    this.lostTimers.set(name, t);
  }

  private async agentLost(name: string): Promise<void> {
    this.lostTimers.delete(name);
    if (this.closed || this.o.registry.get(name)?.link) return;
    const jobs = this.o.index.jobsOn(name);
    this.o.logger.warn({ agent_id: name, attempts: jobs.length }, 'agent lost');
    await Promise.all(
      jobs.map((id) => {
        const at = this.o.index.attemptOf(id);
        return at ? this.o.writer.write(id, (r) => lost(r, at.attempt, `agent ${name} lost (no heartbeat for ${this.o.heartbeatTimeoutMs} ms)`, new Date())) : undefined;
      }),
    );
  }

  assign(agent: string, record: JobRecord): boolean {
    const link = this.o.registry.get(agent)?.link;
    if (!link) return false;
    const timeoutMs = (record.job.spec?.timeoutSeconds ?? 3600) * 1000;
    return link.send({
      msg: { $case: 'assign', value: { jobId: record.job.id, attempt: record.job.attempt, spec: record.job.spec, deadline: new Date(Date.now() + timeoutMs).toISOString() } },
    });
  }

  cancel(agent: string, jobId: string, attempt: number, graceSeconds: number, reason: string): boolean {
    const link = this.o.registry.get(agent)?.link;
    return !!link?.send({ msg: { $case: 'cancel', value: { jobId, attempt, graceSeconds, reason } } });
  }

  drain(agent: string, reason: string): boolean {
    const link = this.o.registry.get(agent)?.link;
    return !!link?.send({ msg: { $case: 'drain', value: { reason } } });
  }

  /** Ends every agent stream (agents reconnect elsewhere or later) and stops the lost timers. */
  close(): void {
    this.closed = true;
    for (const t of this.lostTimers.values()) clearTimeout(t);
    this.lostTimers.clear();
    for (const s of this.sessions) s.close('control plane is shutting down');
  }
}
