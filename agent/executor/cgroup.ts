/**
 * One cgroup per attempt: the job runs inside it from its first instruction,
 * its limits are the cgroup's, its usage is read from it, and cancel/timeout
 * empty it, however the job's processes detached (setsid, double fork).
 *
 * The agent calls `detectCgroups` once at start. The CgroupSetup it returns
 * is JSON: it goes into every attempt's spec.json, so the supervisor (another
 * process) and a later agent process open the same cgroups by key
 * (`<jobId>.<attempt>`) without detecting again.
 *
 * Which mode, and why:
 * - `v2` when the unified hierarchy gives our attempt cgroups all of cpu,
 *   memory and pids (listed in cgroup.controllers and enabled down the path);
 * - else `v1` when the v1 hierarchies of memory, cpu, cpuacct, pids or freezer
 *   are mounted and we can mkdir in them (a "hybrid" host binds the
 *   controllers to v1, leaving v2 with none);
 * - else `v2` with whatever controllers it gives, possibly none: membership,
 *   freeze and cgroup.kill work in any v2 cgroup, so the job is still contained
 *   and killed whole, only its limits are not enforced;
 * - else `none` with the reason (a non-root agent without delegation): the
 *   caller falls back to the process group. Detection never throws.
 * Mounts come from /proc/self/mountinfo, not from fixed paths; `mounts`
 * overrides them (tests force v2 onto a hybrid host's /sys/fs/cgroup/unified).
 *
 * Where attempt cgroups go:
 * - v2: `<mount>/<parent>/<name>` with --cgroup-parent, else
 *   `<mount>/runmesh.slice/<name>` (as root: the root cgroup is exempt from
 *   the no-internal-processes rule, so controllers can be enabled in
 *   runmesh.slice and below, as Nomad does with nomad.slice). Failing that,
 *   under our own cgroup if it is delegated to us (writable). A v2 cgroup that
 *   holds processes cannot enable controllers for its children, so if the
 *   agent is alone in its cgroup it moves itself into the leaf
 *   `<own>/runmesh-agent` first (what container runtimes do with init.scope);
 *   if others share it, attempts still get cgroups there, without controllers,
 *   and `note` says why.
 * - v1: `<each hierarchy's mount>/<parent or runmesh>/<name>`; cpuset, devices
 *   and blkio are left alone (a cpuset child needs cpus and mems copied in).
 * `name` is unique per agent, so agents sharing a host never share a cgroup.
 *
 * Limits (0: not set) are written only for controllers the setup has:
 * memoryBytes -> v2 memory.max, memory.swap.max=0, memory.oom.group=1 (an OOM
 * takes the whole job, not one process of it) / v1 memory.limit_in_bytes and
 * memory.memsw.limit_in_bytes (v1 has no OOM group: the kernel kills the
 * largest process); cpuMillis -> cpu.max "<quota> 100000" / cfs_quota_us and
 * cfs_period_us; cpuWeight -> cpu.weight / cpu.shares (weight * 1024 / 100);
 * pids -> pids.max.
 *
 * For the supervisor: spawn `cg.wrap(argv)` instead of argv. The wrapper is
 * /bin/sh, so a program that cannot be exec'd shows as exit 127 (sh's "not
 * found") rather than a spawn ENOENT, and 125 (WRAP_FAILED_EXIT) means the
 * move into the cgroup failed: the host's fault, not the job's. Cancel is
 * `signal('SIGTERM')`, then `kill()` after the grace; the attempt has ended
 * once `populated()` is false; read `usage()` and `oomKills()` before
 * `remove()`. Attempt cgroups hang off the hierarchy, not off the agent's own
 * cgroup (v1) or process, so jobs outlive the agent and count apart from it.
 *
 * Everything here is synchronous cgroupfs reads and writes (fast, never
 * blocking) except kill(), which polls and is bounded in time.
 */
import { existsSync, mkdirSync, readFileSync, rmdirSync, statfsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { NamedError, hasCause } from '../../proto/cause.js';
import type { AttemptLimits, AttemptUsage } from './executor.js';

/** JSON-serialisable; see the header for how it is chosen. */
export type CgroupSetup =
  | {
      readonly mode: 'v2';
      /** Absolute dir under the v2 mount where attempt cgroups go. */
      readonly base: string;
      /** Controllers attempt cgroups get (enabled in base's cgroup.subtree_control); may be empty. */
      readonly controllers: readonly string[];
      /** Why controllers are missing, when they are. */
      readonly note?: string;
    }
  | {
      readonly mode: 'v1';
      /** Controller -> absolute dir in its hierarchy where attempt cgroups go (co-mounted controllers share one). */
      readonly bases: Readonly<Record<string, string>>;
      readonly controllers: readonly string[];
      /** The path of `bases` inside each hierarchy, e.g. `/runmesh/<name>`. */
      readonly path: string;
    }
  | { readonly mode: 'none'; readonly reason: string };

/** Where the cgroup hierarchies are mounted: v1 maps controller -> mount point. */
export interface CgroupMounts {
  readonly v2?: string;
  readonly v1?: Readonly<Record<string, string>>;
}

export interface DetectOptions {
  /** Unique per agent (e.g. a hash of its work dir); one path component. */
  readonly name: string;
  /** --cgroup-parent: a path inside the hierarchy (v2) or each hierarchy (v1). Default runmesh.slice (v2), runmesh (v1). */
  readonly parent?: string;
  /** Instead of /proc/self/mountinfo's; a hierarchy left out counts as absent. */
  readonly mounts?: CgroupMounts;
}

/** A cgroup file or dir that could not be created, written or emptied. */
export class CgroupError extends NamedError {
  constructor(
    readonly path: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(`cgroup ${path}: ${detail}`, options);
  }
}
export const isCgroupError = (err: unknown): boolean => hasCause(err, CgroupError);

const NEEDED_V2 = ['cpu', 'memory', 'pids'];
const WANTED_V1 = ['memory', 'cpu', 'cpuacct', 'pids', 'freezer'];
const CGROUP_MAGIC = 0x27e0eb;
const CGROUP2_MAGIC = 0x63677270;
const CPU_PERIOD_US = 100_000;
/** The kernel refuses a quota under 1 ms per period. */
const MIN_CPU_QUOTA_US = 1000;
const AGENT_LEAF = 'runmesh-agent';
/** kill(): how long freezing may take before we kill unfrozen (a task in uninterruptible sleep can hold it up). */
const FREEZE_WAIT_MS = 1000;
const KILL_TIMEOUT_MS = 5000;
const POLL_MS = 10;
/** wrap()'s exit status when the job cannot be moved into its cgroup (as `docker run` uses 125 for its own failures). */
export const WRAP_FAILED_EXIT = 125;

/** Cgroup mounts listed in a /proc/<pid>/mountinfo text; the first mount of each hierarchy wins. */
export function findCgroupMounts(mountinfo: string): CgroupMounts {
  let v2: string | undefined;
  const v1: Record<string, string> = {};
  for (const line of mountinfo.split('\n')) {
    const f = line.split(' ');
    const sep = f.indexOf('-', 6);
    const mountPoint = f[4];
    if (sep < 0 || mountPoint === undefined) continue;
    const dir = mountPoint.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
    if (f[sep + 1] === 'cgroup2') v2 ??= dir;
    if (f[sep + 1] !== 'cgroup') continue;
    for (const opt of (f[sep + 3] ?? '').split(',')) if (WANTED_V1.includes(opt)) v1[opt] ??= dir;
  }
  return { v2, v1 };
}

export function detectCgroups(o: DetectOptions): CgroupSetup {
  if (!validName(o.name)) return { mode: 'none', reason: `invalid cgroup name ${JSON.stringify(o.name)}` };
  let mounts: CgroupMounts;
  try {
    mounts = o.mounts ?? findCgroupMounts(readFileSync('/proc/self/mountinfo', 'utf8'));
  } catch (err) {
    return { mode: 'none', reason: `cannot read /proc/self/mountinfo: ${message(err)}` };
  }
  const rootOffers = mounts.v2 ? words(read(join(mounts.v2, 'cgroup.controllers'))) : [];
  // v2 first when it can give all of cpu, memory and pids; otherwise it is a last resort after v1.
  let v2: CgroupSetup | string | undefined;
  if (mounts.v2 && NEEDED_V2.every((c) => rootOffers.includes(c))) {
    v2 = setUpV2(mounts.v2, o);
    if (typeof v2 !== 'string' && hasAll(v2)) return v2;
  }
  const v1 = Object.keys(mounts.v1 ?? {}).length ? setUpV1(mounts.v1 ?? {}, o) : `no cgroup v1 hierarchy of ${WANTED_V1.join(', ')}`;
  if (typeof v1 !== 'string') return v1;
  if (mounts.v2) v2 ??= setUpV2(mounts.v2, o);
  if (v2 !== undefined && typeof v2 !== 'string') return v2;
  return { mode: 'none', reason: `${v2 ?? 'no cgroup v2 mount'}; ${v1}` };
}

const hasAll = (s: CgroupSetup): boolean => s.mode === 'v2' && NEEDED_V2.every((c) => s.controllers.includes(c));

/** One line for operators: how attempts are contained on this host. */
export function describeCgroups(s: CgroupSetup): string {
  if (s.mode === 'none') return `process group only: ${s.reason}`;
  const what = s.controllers.length ? s.controllers.join(' ') : 'no controllers: limits not enforced';
  if (s.mode === 'v1') return `cgroup v1 (${what}) under ${s.path}`;
  return `cgroup v2 (${what}) under ${s.base}${s.note ? `; ${s.note}` : ''}`;
}

function setUpV2(mount: string, o: DetectOptions): CgroupSetup | string {
  if (!isFs(mount, CGROUP2_MAGIC)) return `${mount} is not a cgroup v2 hierarchy`;
  const wanted = join(mount, o.parent ?? 'runmesh.slice', o.name);
  const failed = tryMkdir(wanted);
  if (!failed)
    return withNote(
      wanted,
      enableDown(mount, wanted),
      `could not be enabled under ${mount} (not offered, or a cgroup on the way holds processes):`,
    );
  if (o.parent !== undefined) return failed;
  const own = ownV2Cgroup(mount);
  if (!own || own === mount) return failed;
  return setUpUnderOwn(own, o.name) ?? failed;
}

/** Under our own (delegated) v2 cgroup; undefined when we cannot write there. */
function setUpUnderOwn(own: string, name: string): CgroupSetup | undefined {
  const base = join(own, name);
  if (tryMkdir(base)) return undefined;
  const others = readPids(join(own, 'cgroup.procs')).filter((pid) => pid !== process.pid);
  if (others.length === 0 && !tryMkdir(join(own, AGENT_LEAF))) {
    try {
      writeFileSync(join(own, AGENT_LEAF, 'cgroup.procs'), String(process.pid));
    } catch {
      // then enabling below fails and the note says why
    }
  }
  const controllers = enableDown(own, base);
  if (others.length === 0) return withNote(base, controllers, `not delegated to our cgroup ${own}:`);
  const note = `our cgroup ${own} also holds other processes, and a v2 cgroup with processes cannot enable controllers for its children`;
  return { mode: 'v2', base, controllers, note };
}

/** A v2 setup; when some of cpu, memory and pids are missing, `note` is `why` followed by them. */
function withNote(base: string, controllers: string[], why: string): CgroupSetup {
  const missing = NEEDED_V2.filter((c) => !controllers.includes(c));
  return missing.length ? { mode: 'v2', base, controllers, note: `${why} ${missing.join(' ')}` } : { mode: 'v2', base, controllers };
}

/** Enables cpu, memory and pids from `top` down to `base` where offered; returns those base's children get. */
function enableDown(top: string, base: string): string[] {
  const levels = [top];
  for (const part of base.slice(top.length).split('/').filter(Boolean)) levels.push(join(levels[levels.length - 1]!, part));
  for (const dir of levels) {
    const offered = words(read(join(dir, 'cgroup.controllers')));
    const enabled = words(read(join(dir, 'cgroup.subtree_control')));
    for (const c of NEEDED_V2.filter((c) => offered.includes(c) && !enabled.includes(c))) {
      try {
        writeFileSync(join(dir, 'cgroup.subtree_control'), `+${c}`);
      } catch {
        // EBUSY (the cgroup holds processes) or not delegated: that controller is then missing below
      }
    }
  }
  return NEEDED_V2.filter((c) => words(read(join(base, 'cgroup.subtree_control'))).includes(c));
}

/** Our own v2 cgroup's dir under `mount`, from /proc/self/cgroup's `0::` line. */
function ownV2Cgroup(mount: string): string | undefined {
  const line = (read('/proc/self/cgroup') ?? '').split('\n').find((l) => l.startsWith('0::'));
  const dir = line && join(mount, line.slice(3));
  return dir && existsSync(join(dir, 'cgroup.procs')) ? dir : undefined;
}

function setUpV1(mounts: Readonly<Record<string, string>>, o: DetectOptions): CgroupSetup | string {
  const path = `/${join(o.parent ?? 'runmesh', o.name).replace(/^\/+/, '')}`;
  const bases: Record<string, string> = {};
  const failed = new Map<string, string[]>(); // why -> controllers, so one line covers hierarchies failing alike
  const fail = (why: string, c: string): void => void failed.set(why, [...(failed.get(why) ?? []), c]);
  for (const c of WANTED_V1) {
    const mount = mounts[c];
    if (mount === undefined) continue;
    if (!isFs(mount, CGROUP_MAGIC)) {
      fail(`${mount} is not a cgroup v1 hierarchy`, c);
      continue;
    }
    const error = mkdirError(join(mount, path));
    if (error === undefined) bases[c] = join(mount, path);
    else fail(`cannot create ${path}: ${error}`, c);
  }
  const controllers = Object.keys(bases);
  if (controllers.length) return { mode: 'v1', bases, controllers, path };
  return [...failed].map(([why, cs]) => `cgroup v1 (${cs.join(' ')}): ${why}`).join('; ');
}

/** A cgroup for one attempt. Its processes, limits and usage; see the header. */
export class AttemptCgroup {
  private constructor(
    private readonly setup: Exclude<CgroupSetup, { mode: 'none' }>,
    readonly key: string,
  ) {}

  /** Makes the attempt's cgroup (an existing empty one is reused) and writes its limits; throws CgroupError naming the file if it cannot. */
  static create(setup: CgroupSetup, key: string, limits: AttemptLimits): AttemptCgroup {
    if (setup.mode === 'none') throw new CgroupError(key, `no cgroup on this host: ${setup.reason}`);
    if (!validName(key)) throw new CgroupError(key, 'invalid attempt key');
    const cg = new AttemptCgroup(setup, key);
    let existed = false;
    for (const dir of cg.dirs()) {
      try {
        mkdirSync(dir, { recursive: setup.mode === 'v1' && !existsSync(dir) });
      } catch (err) {
        if (!hasCode(err, 'EEXIST')) throw cg.removeAfter(new CgroupError(dir, `cannot create: ${message(err)}`, { cause: err }));
        existed = true;
      }
    }
    if (existed && cg.populated()) throw new CgroupError(cg.dirs()[0]!, 'already exists and holds processes');
    try {
      cg.writeLimits(limits);
    } catch (err) {
      throw cg.removeAfter(err);
    }
    return cg;
  }

  /** The attempt's cgroup made earlier, possibly by another process; undefined if there is none. */
  static open(setup: CgroupSetup, key: string): AttemptCgroup | undefined {
    if (setup.mode === 'none' || !validName(key)) return undefined;
    const cg = new AttemptCgroup(setup, key);
    return cg.dirs().some((d) => existsSync(d)) ? cg : undefined;
  }

  /**
   * An argv that moves its own process into the cgroup (every hierarchy), then
   * execs `argv`: the job's first instruction already runs inside, so nothing
   * it forks can start outside. Exits WRAP_FAILED_EXIT with a message on
   * stderr if the move fails (e.g. the cgroup was removed meanwhile).
   */
  wrap(argv: readonly string[]): string[] {
    const procs = this.dirs().map((d) => join(d, 'cgroup.procs'));
    const script =
      'n=$1; shift; while [ "$n" -gt 0 ]; do ' +
      `echo $$ > "$1" || { echo "runmesh: cannot move the job into its cgroup ($1)" >&2; exit ${WRAP_FAILED_EXIT}; }; ` +
      'shift; n=$((n - 1)); done; exec "$@"';
    return ['/bin/sh', '-c', script, 'runmesh-cgroup', String(procs.length), ...procs, ...argv];
  }

  /** The processes in it (in any of its hierarchies), ascending. */
  pids(): number[] {
    const all = new Set(this.dirs().flatMap((d) => readPids(join(d, 'cgroup.procs'))));
    return [...all].sort((a, b) => a - b);
  }

  /** Whether any process is in it; false once removed. */
  populated(): boolean {
    if (this.setup.mode === 'v1') return this.pids().length > 0;
    return keyed(read(this.file('cgroup.events')), 'populated') > 0;
  }

  /** Sends `sig` to every process in it (a cancel's graceful first step); returns how many got it. */
  signal(sig: NodeJS.Signals): number {
    let n = 0;
    for (const pid of this.pids()) {
      try {
        process.kill(pid, sig);
        n++;
      } catch {
        // exited meanwhile
      }
    }
    return n;
  }

  /**
   * Kills every process in it and resolves once it is empty: cgroup.kill where
   * the kernel has it (v2, 5.14+), else freeze, SIGKILL all, thaw, so nothing
   * forks past us. Throws CgroupError if it is not empty within `timeoutMs`.
   */
  async kill(timeoutMs = KILL_TIMEOUT_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const killFile = this.setup.mode === 'v2' ? this.file('cgroup.kill') : undefined;
    if (killFile && existsSync(killFile)) write(killFile, '1');
    else await this.frozen(deadline, () => this.signal('SIGKILL'));
    while (this.populated()) {
      if (Date.now() >= deadline)
        throw new CgroupError(this.dirs()[0]!, `${this.pids().length} processes left after ${timeoutMs} ms of SIGKILL`);
      await sleep(POLL_MS);
      this.signal('SIGKILL'); // without a freezer, what forked meanwhile
    }
  }

  /** Peak memory and CPU time of everything that ran in it; 0 where the controller is absent. */
  usage(): AttemptUsage {
    if (this.setup.mode === 'v2') {
      return {
        peakMemoryBytes: num(read(this.file('memory.peak'))),
        cpuSeconds: keyed(read(this.file('cpu.stat')), 'usage_usec') / 1e6,
      };
    }
    return {
      peakMemoryBytes: num(read(this.file('memory.max_usage_in_bytes', 'memory'))),
      cpuSeconds: num(read(this.file('cpuacct.usage', 'cpuacct'))) / 1e9,
    };
  }

  /** How many processes the kernel OOM-killed in it. */
  oomKills(): number {
    if (this.setup.mode === 'v2') return keyed(read(this.file('memory.events')), 'oom_kill');
    return keyed(read(this.file('memory.oom_control', 'memory')), 'oom_kill');
  }

  /** Removes it from every hierarchy; call once it is empty (CgroupError if not). Idempotent. */
  remove(): void {
    for (const dir of this.dirs()) {
      try {
        rmdirSync(dir);
      } catch (err) {
        if (!hasCode(err, 'ENOENT')) throw new CgroupError(dir, `cannot remove: ${message(err)}`, { cause: err });
      }
    }
  }

  /** Its dirs, one per hierarchy (co-mounted v1 controllers share one). */
  private dirs(): string[] {
    if (this.setup.mode === 'v2') return [join(this.setup.base, this.key)];
    return [...new Set(Object.values(this.setup.bases))].map((b) => join(b, this.key));
  }

  /** A file of the cgroup; in v1, in `controller`'s hierarchy (undefined without it). */
  private file(name: string, controller?: string): string | undefined {
    if (this.setup.mode === 'v2') return join(this.setup.base, this.key, name);
    const base = controller ? this.setup.bases[controller] : undefined;
    return base && join(base, this.key, name);
  }

  private has(controller: string): boolean {
    return this.setup.controllers.includes(controller);
  }

  private writeLimits(l: AttemptLimits): void {
    for (const w of limitWrites(this.setup.mode, l)) {
      const f = this.has(w.controller) ? this.file(w.file, w.controller) : undefined;
      if (f && (!w.optional || existsSync(f))) write(f, String(w.value));
    }
  }

  /** Runs `fn` with the cgroup frozen (as far as it freezes by `deadline`), then thaws it. */
  private async frozen(deadline: number, fn: () => void): Promise<void> {
    const v2 = this.setup.mode === 'v2';
    const state = v2 ? this.file('cgroup.freeze') : this.has('freezer') ? this.file('freezer.state', 'freezer') : undefined;
    if (!state || !existsSync(state)) return fn();
    write(state, v2 ? '1' : 'FROZEN');
    try {
      const until = Math.min(deadline, Date.now() + FREEZE_WAIT_MS);
      while (!this.isFrozen() && Date.now() < until) await sleep(POLL_MS);
      fn();
    } finally {
      write(state, v2 ? '0' : 'THAWED');
    }
  }

  private isFrozen(): boolean {
    if (this.setup.mode === 'v2') return keyed(read(this.file('cgroup.events')), 'frozen') === 1;
    return read(this.file('freezer.state', 'freezer'))?.trim() === 'FROZEN';
  }

  /** Best-effort removal of what create() made, then `err` to throw. */
  private removeAfter(err: unknown): unknown {
    try {
      this.remove();
    } catch {
      // the original error says more
    }
    return err;
  }
}

export interface LimitWrite {
  readonly controller: string;
  readonly file: string;
  readonly value: string | number;
  /** Written only where the kernel has the file (memory.swap.max without swap accounting, say). */
  readonly optional?: boolean;
}

/** The files that set `l` in one cgroup, in the order to write them (exported for its table test). */
export function limitWrites(mode: 'v1' | 'v2', l: AttemptLimits): LimitWrite[] {
  const v2 = mode === 'v2';
  const w: LimitWrite[] = [];
  const memory = (file: string, value: number, optional?: boolean): void => void w.push({ controller: 'memory', file, value, optional });
  const cpu = (file: string, value: string | number): void => void w.push({ controller: 'cpu', file, value });
  if (l.memoryBytes > 0 && v2) {
    memory('memory.max', l.memoryBytes);
    memory('memory.swap.max', 0, true);
    memory('memory.oom.group', 1, true);
  } else if (l.memoryBytes > 0) {
    memory('memory.limit_in_bytes', l.memoryBytes);
    memory('memory.memsw.limit_in_bytes', l.memoryBytes, true); // after limit_in_bytes: memsw may not go below it
  }
  const quota = Math.max(MIN_CPU_QUOTA_US, Math.round((l.cpuMillis * CPU_PERIOD_US) / 1000));
  if (l.cpuMillis > 0 && v2) cpu('cpu.max', `${quota} ${CPU_PERIOD_US}`);
  else if (l.cpuMillis > 0) {
    cpu('cpu.cfs_period_us', CPU_PERIOD_US);
    cpu('cpu.cfs_quota_us', quota);
  }
  const weight = Math.min(10_000, Math.max(1, Math.round(l.cpuWeight)));
  if (l.cpuWeight > 0) cpu(v2 ? 'cpu.weight' : 'cpu.shares', v2 ? weight : Math.max(2, Math.round((weight * 1024) / 100)));
  if (l.pids > 0) w.push({ controller: 'pids', file: 'pids.max', value: l.pids });
  return w;
}

/** One path component the kernel accepts as a cgroup name. */
function validName(s: string): boolean {
  return s.length > 0 && s.length <= 255 && s !== '.' && s !== '..' && !/[/\0\n]/.test(s);
}

/** A cgroupfs file's text; undefined if it (or its cgroup) is gone. */
function read(file: string | undefined): string | undefined {
  if (file === undefined) return undefined;
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

function write(file: string, value: string): void {
  try {
    writeFileSync(file, value);
  } catch (err) {
    throw new CgroupError(file, `cannot write ${JSON.stringify(value)}: ${message(err)}`, { cause: err });
  }
}

/** mkdir -p; the failure as a reason naming the dir, or undefined. */
function tryMkdir(dir: string): string | undefined {
  const why = mkdirError(dir);
  return why && `cannot create ${dir}: ${why}`;
}

/** mkdir -p; undefined, or the error's code (EACCES...) for a reason line. */
function mkdirError(dir: string): string | undefined {
  try {
    mkdirSync(dir, { recursive: true });
    return undefined;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? message(err);
  }
}

function isFs(dir: string, magic: number): boolean {
  try {
    return statfsSync(dir).type === magic;
  } catch {
    return false;
  }
}

function readPids(file: string): number[] {
  return words(read(file)).map(Number);
}

const words = (text: string | undefined): string[] => (text ?? '').split(/\s+/).filter(Boolean);
const num = (text: string | undefined): number => Number(text?.trim() || 0) || 0;
/** The value of `key` in a flat-keyed file ("key value" lines); 0 if absent. */
const keyed = (text: string | undefined, key: string): number => num(text?.match(new RegExp(`^${key} (\\d+)$`, 'm'))?.[1]);
const hasCode = (err: unknown, code: string): boolean => (err as NodeJS.ErrnoException | undefined)?.code === code;
const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
