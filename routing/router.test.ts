import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  formatSelector,
  matches,
  parseSelector,
  Router,
  snapshotOf,
  type AgentView,
  type QueuedJob,
  type Requirement,
  type Resources,
} from './index.js';
import { agent, busyAgent, job, res, running, TEST_SEED } from './test-support.js';

const KEYS = ['os', 'arch', 'pool', 'gpu', 'zone'] as const;
const VALUES = ['a', 'b', 'c'] as const;

const resources = fc.record({
  slots: fc.integer({ min: 1, max: 8 }),
  cpuMillis: fc.constantFrom(0, 1000, 2000, 4000, 8000),
  memoryMb: fc.constantFrom(0, 512, 2048, 8192),
});

const agents = fc
  .array(
    fc.record({
      labels: fc.dictionary(fc.constantFrom(...KEYS), fc.constantFrom(...VALUES), { maxKeys: 5 }),
      capacity: resources,
      used: fc.record({ slots: fc.integer({ min: 0, max: 8 }), cpu: fc.nat(8000), mem: fc.nat(8192) }),
      schedulable: fc.boolean(),
      load: fc.double({ min: 0, max: 2, noNaN: true }),
    }),
    { maxLength: 25 },
  )
  .map((as) =>
    as.map((a, k) =>
      busyAgent(agent(`agent-${k}`, a.labels, a.capacity, { schedulable: a.schedulable, load: a.load }), {
        slots: Math.min(a.used.slots, a.capacity.slots),
        cpuMillis: Math.min(a.used.cpu, a.capacity.cpuMillis),
        memoryMb: Math.min(a.used.mem, a.capacity.memoryMb),
      }),
    ),
  );

/** Selectors built from the vocabulary the agents' labels use, so many of them match something. */
const requirement: fc.Arbitrary<Requirement> = fc
  .record({
    key: fc.constantFrom(...KEYS),
    op: fc.constantFrom('=' as const, '!=' as const, 'in' as const, 'notin' as const, 'exists' as const, '!exists' as const),
    values: fc.array(fc.constantFrom(...VALUES), { minLength: 1, maxLength: 2 }),
  })
  .map((r) =>
    r.op === 'exists' || r.op === '!exists'
      ? { ...r, values: [] }
      : r.op === '=' || r.op === '!='
        ? { ...r, values: r.values.slice(0, 1) }
        : r,
  );

const jobs = fc
  .array(
    fc.record({
      selector: fc.array(requirement, { maxLength: 3 }).map(formatSelector),
      resources,
      qos: fc.constantFrom('critical' as const, 'standard' as const, 'batch' as const),
      tenant: fc.constantFrom('t1', 't2', 't3'),
      priority: fc.integer({ min: 0, max: 3 }),
      affinityKey: fc.constantFrom('', '', 'repo-a', 'repo-b'),
      strategy: fc.constantFrom('spread' as const, 'binpack' as const),
    }),
    { maxLength: 60 },
  )
  .map((js) => js.map((j, k) => job(`job-${k}`, j)));

function assertSafe(
  cluster: readonly AgentView[],
  queue: readonly QueuedJob[],
  placements: ReadonlyArray<{ jobId: string; agent: string }>,
): void {
  const used = new Map<string, Resources>();
  const byId = new Map(queue.map((j) => [j.id, j]));
  for (const p of placements) {
    const j = byId.get(p.jobId) as QueuedJob;
    const a = cluster.find((x) => x.name === p.agent) as AgentView;
    expect(a.schedulable).toBe(true);
    expect(matches(parseSelector(j.selector), a.labels)).toBe(true);
    const u = used.get(a.name) ?? res(0);
    used.set(a.name, {
      slots: u.slots + j.resources.slots,
      cpuMillis: u.cpuMillis + j.resources.cpuMillis,
      memoryMb: u.memoryMb + j.resources.memoryMb,
    });
  }
  for (const [name, u] of used) {
    const a = cluster.find((x) => x.name === name) as AgentView;
    expect(u.slots).toBeLessThanOrEqual(a.free.slots);
    if (a.capacity.cpuMillis > 0) expect(u.cpuMillis).toBeLessThanOrEqual(Math.max(0, a.free.cpuMillis));
    if (a.capacity.memoryMb > 0) expect(u.memoryMb).toBeLessThanOrEqual(Math.max(0, a.free.memoryMb));
  }
}

describe('Router placement safety', () => {
  it(`never violates a selector or over-commits slots, cpu or memory (seed ${TEST_SEED})`, () => {
    fc.assert(
      fc.property(agents, jobs, fc.integer({ min: 1, max: 2 ** 31 - 1 }), (cluster, queue, seed) => {
        const d = new Router({ seed }).decide(snapshotOf(cluster), queue);
        assertSafe(cluster, queue, d.placements);
        expect(d.preemptions).toEqual([]);
        // Every job is either placed or has a reason, never both.
        const placed = new Set(d.placements.map((p) => p.jobId));
        expect(placed.size).toBe(d.placements.length);
        for (const j of queue) expect(placed.has(j.id) !== d.waiting.has(j.id)).toBe(true);
        for (const reason of d.waiting.values()) expect(reason).toMatch(/^(unschedulable:|waiting:)/);
      }),
      { seed: TEST_SEED, numRuns: 400 },
    );
  });

  it(`a job that fits on some idle agent is placed (seed ${TEST_SEED})`, () => {
    fc.assert(
      fc.property(agents, jobs, (cluster, queue) => {
        const [first] = queue;
        if (!first) return;
        const d = new Router().decide(snapshotOf(cluster), [first]);
        const sel = parseSelector(first.selector);
        const fitting = cluster.some(
          (a) =>
            a.schedulable &&
            matches(sel, a.labels) &&
            first.resources.slots <= a.free.slots &&
            (a.capacity.cpuMillis === 0 || first.resources.cpuMillis <= a.free.cpuMillis) &&
            (a.capacity.memoryMb === 0 || first.resources.memoryMb <= a.free.memoryMb),
        );
        expect(d.placements.length).toBe(fitting ? 1 : 0);
      }),
      { seed: TEST_SEED, numRuns: 400 },
    );
  });
});

describe('Router reasons and order', () => {
  const cluster = [agent('m1', { os: 'mac' }, res(2, 8000, 16000)), agent('l1', { os: 'linux', gpu: 'a100' }, res(1, 4000, 8000))];

  it('tells unschedulable jobs from transient waits', () => {
    const queue = [
      job('nomatch', { selector: 'gpu,os=mac' }),
      job('toobig', { selector: 'os=mac', resources: res(1, 0, 64000) }),
      job('toomanyslots', { resources: res(3) }),
      job('fill', { selector: 'os=linux' }),
      job('busy', { selector: 'os=linux' }),
      job('bad', { selector: 'os=' }),
    ];
    const d = new Router().decide(snapshotOf(cluster), queue);
    expect(d.placements).toEqual([{ jobId: 'fill', agent: 'l1' }]);
    expect(d.waiting.get('nomatch')).toBe('unschedulable: no agent matches gpu,os=mac');
    expect(d.waiting.get('toobig')).toBe('unschedulable: needs 64000 MB memory, largest matching agent has 16000');
    expect(d.waiting.get('toomanyslots')).toBe('unschedulable: needs 3 slots, largest matching agent has 2');
    expect(d.waiting.get('busy')).toBe('waiting: the 1 matching agent is busy');
    expect(d.waiting.get('bad')).toMatch(/^unschedulable: invalid selector: expected label value.* at position 3$/);
  });

  it('says so when every matching agent is cordoned, and when the cluster is empty', () => {
    const d = new Router().decide(snapshotOf([agent('c', { os: 'mac' }, res(1), { schedulable: false })]), [
      job('j', { selector: 'os=mac' }),
    ]);
    expect(d.waiting.get('j')).toBe('waiting: the 1 matching agent is cordoned, draining, unhealthy or disconnected');
    expect(new Router().decide(snapshotOf([]), [job('k')]).waiting.get('k')).toBe('waiting: no agent connected');
  });

  it('serves critical before standard before batch, then priority, then FIFO', () => {
    const one = [agent('a', {}, res(3))];
    const queue = [job('b1', { qos: 'batch' }), job('s-low'), job('s-high', { priority: 5 }), job('c1', { qos: 'critical' })];
    const d = new Router().decide(snapshotOf(one), queue);
    expect(d.placements.map((p) => p.jobId)).toEqual(['c1', 's-high', 's-low']);
    expect(d.waiting.get('b1')).toBe('waiting: the 1 matching agent is busy');
  });

  it('binpack fills the fullest agent that fits; spread avoids the loaded one', () => {
    const pair = [busyAgent(agent('full', {}, res(4)), res(3)), agent('empty', {}, res(4))];
    const bin = new Router().decide(snapshotOf(pair), [job('j', { strategy: 'binpack' })]);
    expect(bin.placements).toEqual([{ jobId: 'j', agent: 'full' }]);
    const sp = new Router().decide(snapshotOf(pair), [job('k', { strategy: 'spread' })]);
    expect(sp.placements).toEqual([{ jobId: 'k', agent: 'empty' }]);
  });

  it('is reproducible: the same seed gives the same decisions', () => {
    const many = Array.from({ length: 30 }, (_, k) => agent(`a${k}`, {}, res(4)));
    const queue = Array.from({ length: 50 }, (_, k) => job(`j${k}`));
    const run = (): unknown => new Router({ seed: 7 }).decide(snapshotOf(many), queue).placements;
    expect(run()).toEqual(run());
  });
});

describe('Router executors', () => {
  const sandbox = { 'runmesh.io/executor-shell': 'true', 'runmesh.io/executor-sandbox': 'true' };

  it('places a sandbox job only on an agent that offers sandbox; a shell job on any agent', () => {
    const cluster = [
      agent('plain', { os: 'linux' }, res(4)),
      agent('bwrap', { os: 'linux', ...sandbox }, res(4)),
      agent('old', {}, res(4)),
    ];
    const queue = [
      job('s1', { executor: 'sandbox' }),
      job('s2', { executor: 'sandbox', selector: 'os=linux' }),
      ...Array.from({ length: 6 }, (_, k) => job(`sh${k}`, { executor: k % 2 ? 'shell' : undefined })),
    ];
    const d = new Router({ seed: 1 }).decide(snapshotOf(cluster), queue);
    const on = new Map(d.placements.map((p) => [p.jobId, p.agent]));
    expect([on.get('s1'), on.get('s2')]).toEqual(['bwrap', 'bwrap']);
    // Shell jobs spread over all three, including the ones that advertise nothing.
    expect(new Set(queue.slice(2).map((j) => on.get(j.id)))).toEqual(new Set(['plain', 'bwrap', 'old']));
  });

  it('says clearly when no agent offers the executor, and keeps the selector reasons for the rest', () => {
    const cluster = [agent('plain', { os: 'linux' }, res(1)), agent('mac', { os: 'mac', ...sandbox }, res(1), { schedulable: false })];
    const d = new Router().decide(snapshotOf(cluster), [
      job('any', { executor: 'sandbox', selector: 'os=linux' }),
      job('nosel', { executor: 'sandbox', selector: 'os=bsd' }),
      job('cordoned', { executor: 'sandbox', selector: 'os=mac' }),
    ]);
    expect(d.placements).toEqual([]);
    expect(d.waiting.get('any')).toBe('unschedulable: no agent matching os=linux offers the sandbox executor');
    expect(d.waiting.get('nosel')).toBe('unschedulable: no agent matches os=bsd');
    expect(d.waiting.get('cordoned')).toBe('waiting: the 1 matching agent is cordoned, draining, unhealthy or disconnected');
    const bare = new Router().decide(snapshotOf([agent('plain')]), [job('j', { executor: 'sandbox' })]);
    expect(bare.waiting.get('j')).toBe('unschedulable: no agent offers the sandbox executor');
    expect(new Router().decide(snapshotOf([]), [job('k', { executor: 'sandbox' })]).waiting.get('k')).toBe('waiting: no agent connected');
  });

  it('a selector on the executor label itself works like the executor', () => {
    const cluster = [agent('plain', {}, res(4)), agent('bwrap', sandbox, res(4))];
    const d = new Router().decide(snapshotOf(cluster), [job('j', { selector: 'runmesh.io/executor-sandbox' })]);
    expect(d.placements).toEqual([{ jobId: 'j', agent: 'bwrap' }]);
  });
});

describe('Router preemption', () => {
  const fullOfBatch = fc
    .array(
      fc.record({
        slots: fc.integer({ min: 1, max: 6 }),
        mix: fc.array(fc.constantFrom('batch' as const, 'standard' as const, 'critical' as const), { minLength: 6, maxLength: 6 }),
      }),
      { minLength: 1, maxLength: 12 },
    )
    .map((specs) => {
      const cluster: AgentView[] = [];
      const run = specs.flatMap((s, k) => {
        const name = `n${k}`;
        cluster.push(busyAgent(agent(name, { pool: k % 2 ? 'x' : 'y' }, res(s.slots)), res(s.slots)));
        // Fill every slot; at least one batch attempt per agent keeps preemption possible.
        return Array.from({ length: s.slots }, (_, i) => running(`${name}-r${i}`, name, i === 0 ? 'batch' : (s.mix[i] ?? 'batch')));
      });
      return { cluster, run };
    });

  it(`a critical job gets a preemption in the first round on a cluster full of batch work; never non-batch (seed ${TEST_SEED})`, () => {
    fc.assert(
      fc.property(fullOfBatch, fc.constantFrom('', 'pool=x', 'pool=y'), ({ cluster, run }, selector) => {
        const sel = parseSelector(selector);
        if (!cluster.some((a) => matches(sel, a.labels))) return;
        const crit = job('crit', { qos: 'critical', selector });
        const d = new Router().decide(snapshotOf(cluster, run), [job('std', { qos: 'standard' }), crit]);
        expect(d.placements).toEqual([]);
        expect(d.preemptions.length).toBeGreaterThan(0);
        const victims = d.preemptions.map((p) => run.find((r) => r.jobId === p.victimJobId));
        for (const v of victims) expect(v?.qos).toBe('batch');
        const agentName = d.preemptions[0]?.agent ?? '';
        for (const p of d.preemptions) expect([p.agent, p.forJobId]).toEqual([agentName, 'crit']);
        expect(d.waiting.get('crit')).toBe(
          `preempting ${d.preemptions.length} batch attempt${d.preemptions.length === 1 ? '' : 's'} on ${agentName}`,
        );
        // A standard job never preempts.
        expect(d.waiting.get('std')).toMatch(/^waiting:/);
      }),
      { seed: TEST_SEED, numRuns: 300 },
    );
  });

  it('picks the fewest victims, then the newest, and does not claim new victims while they drain', () => {
    const a = busyAgent(agent('a', {}, res(5)), res(5));
    const b = busyAgent(agent('b', {}, res(4)), res(4));
    const run = [
      { ...running('a-old', 'a', 'batch', res(2)), startedAt: 1 },
      { ...running('a-new', 'a', 'batch', res(2)), startedAt: 5 },
      { ...running('a-std', 'a', 'standard', res(1)), startedAt: 2 },
      { ...running('b-1', 'b', 'batch', res(1)), startedAt: 9 },
      { ...running('b-2', 'b', 'critical', res(3)), startedAt: 9 },
    ];
    const router = new Router();
    const crit = job('crit', { qos: 'critical', resources: res(2) });
    const first = router.decide(snapshotOf([a, b], run), [crit]);
    expect(first.preemptions).toEqual([{ victimJobId: 'a-new', agent: 'a', forJobId: 'crit' }]);
    const again = router.decide(snapshotOf([a, b], run), [crit]);
    expect(again.preemptions).toEqual([]);
    expect(again.waiting.get('crit')).toBe('preempting 1 batch attempt on a');
    // Once the victim is gone and its room is free, the critical job is placed.
    const freed = busyAgent(agent('a', {}, res(5)), res(3));
    const done = router.decide(
      snapshotOf(
        [freed, b],
        run.filter((r) => r.jobId !== 'a-new'),
      ),
      [crit],
    );
    expect(done.placements).toEqual([{ jobId: 'crit', agent: 'a' }]);
  });
});
