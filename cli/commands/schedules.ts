/**
 * `runmesh schedules create | ls | get | pause | resume | rm | trigger`: a
 * tenant's cron schedules. `create NAME --cron PATTERN` takes submit's job
 * flags and a command after `--`, a job spec file (`-f`), or a template
 * (`--template T --param k=v`).
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { JobSpec } from '../../proto/gen/runmesh/v1/job.js';
import {
  MissedPolicy,
  OverlapPolicy,
  Schedule,
  ScheduleRun,
  type ScheduleSpec,
  type ScheduleServiceClient,
} from '../../proto/gen/runmesh/v1/schedule.js';
import { specsFromFile } from '../../control-plane/pipelines/spec-file.js';
import { YamlText } from '../../control-plane/pipelines/yaml-text.js';
import { isValidation } from '../../control-plane/jobs/errors.js';
import { type Connection, unary, withConnection } from '../client.js';
import { parseDuration } from '../duration.js';
import { UsageError } from '../errors.js';
import { commandText, keyValues, printJson, stateName, table, indent } from '../format.js';
import { collect, enumFlag, serverOption, tokenOption, type Target } from '../options.js';
import { buildSpec, jobOptions, paramsOf, type SubmitFlags } from '../spec.js';

interface CreateOptions extends SubmitFlags, Target {
  cron?: string;
  timezone?: string;
  overlap?: string;
  missed?: string;
  missedAfter?: string;
  file?: string;
  template?: string;
  param?: string[];
  json?: boolean;
}

type NamedOptions = Target & { tenant?: string; json?: boolean };

/** The unary methods that take a name and a tenant and answer with the schedule. */
type NamedMethod = 'getSchedule' | 'pauseSchedule' | 'resumeSchedule' | 'deleteSchedule';

export function registerSchedules(program: Command): void {
  const schedules = program
    .command('schedules')
    .description("a tenant's cron schedules: a job submitted at each tick, once, by the leader");
  const create = schedules
    .command('create')
    .description("create a schedule: runmesh schedules create NAME --cron '*/5 * * * *' [job flags] -- CMD ARGS...")
    .argument('<name>', "letters, digits, '.', '_' and '-', at most 63")
    .argument('[command...]', 'program and arguments each tick runs (after --)')
    .option(
      '--cron <pattern>',
      'cron pattern: 5 fields (minute hour day month weekday), or 6 with seconds first (or schedule.cron in -f FILE)',
    )
    .option('--timezone <zone>', 'IANA time zone the pattern is read in, e.g. Europe/Berlin (default UTC)')
    .option('--overlap <policy>', 'while an earlier run is active: skip (default) | queue | cancel-previous')
    .option('--missed <policy>', 'ticks missed while no leader ran: run-once (default: one run for them all) | skip')
    .option('--missed-after <duration>', 'a tick not started this long after its time is missed (default 1m)')
    .option(
      '-f, --file <spec.yaml>',
      'the job, from a job spec file (the format of templates), with the schedule\'s own settings under schedule: (README "Schedules")',
    )
    .option('--template <name>', 'submit this template at each tick, filled in with --param')
    .option('--param <k=v>', "a template parameter's value (repeatable)", collect)
    .addOption(serverOption())
    .addOption(tokenOption())
    .option('--json', 'print the schedule as JSON');
  jobOptions(create).action((name: string, command: string[], o: CreateOptions) => createSchedule(name, command, o));
  schedules
    .command('ls')
    .description('list schedules: pattern, next tick, last run')
    .option('--tenant <tenant>', 'only this tenant (default: every tenant the token may see)')
    .addOption(serverOption())
    .addOption(tokenOption())
    .option('--json', 'print a JSON array')
    .action((o: NamedOptions) => ls(o));
  named(schedules, 'get', 'a schedule, its next three ticks and its latest runs', 'getSchedule', (s) => describe(s));
  named(
    schedules,
    'pause',
    'stop firing until resumed (ticks meanwhile never fire)',
    'pauseSchedule',
    (s) => `schedule ${s.spec?.name} paused`,
  );
  named(schedules, 'resume', 'fire again, from the next tick after now', 'resumeSchedule', (s) => `schedule ${s.spec?.name} resumed`);
  named(schedules, 'rm', 'delete a schedule (its jobs stay)', 'deleteSchedule', (s) => `schedule ${s.spec?.name} deleted`);
  schedules
    .command('trigger')
    .description('run the schedule now, outside its pattern, under its overlap policy')
    .argument('<name>')
    .option('--tenant <tenant>', "the schedule's tenant (default: the token's only tenant)")
    .addOption(serverOption())
    .addOption(tokenOption())
    .option('--json', 'print {"schedule","run"} as JSON')
    .action((name: string, o: NamedOptions) => trigger(name, o));
}

function named(parent: Command, verb: string, description: string, method: NamedMethod, line: (s: Schedule) => string): void {
  parent
    .command(verb)
    .description(description)
    .argument('<name>')
    .option('--tenant <tenant>', "the schedule's tenant (default: the token's only tenant)")
    .addOption(serverOption())
    .addOption(tokenOption())
    .option('--json', 'print the schedule as JSON')
    .action(async (name: string, o: NamedOptions) => {
      const res = await withConnection(o, (conn) => call(conn, method, { name, tenant: o.tenant ?? '' }));
      if (!res.schedule) throw new Error(`ScheduleService.${method} returned no schedule`);
      if (o.json) printJson(Schedule.toJSON(res.schedule));
      else process.stdout.write(`${line(res.schedule)}\n`);
    });
}

function call(conn: Connection, method: NamedMethod, req: { name: string; tenant: string }): Promise<{ schedule?: Schedule }> {
  const client: ScheduleServiceClient = conn.schedules;
  const rpc = `ScheduleService.${method[0]!.toUpperCase()}${method.slice(1)}`;
  return unary(conn, rpc, client[method].bind(client), req);
}

async function createSchedule(name: string, command: string[], o: CreateOptions): Promise<void> {
  const file = o.file === undefined ? undefined : readSpecFile(o.file);
  const pick = (flag: string, given: string | undefined, key: keyof FileSchedule): string | undefined => {
    const inFile = file?.schedule[key];
    if (given !== undefined && inFile !== undefined)
      throw new UsageError(`${flag} is also given in ${o.file} (schedule.${key}): give it once`);
    return given ?? inFile;
  };
  const cron = pick('--cron', o.cron, 'cron');
  if (cron === undefined) throw new UsageError('--cron is missing (or schedule.cron in the -f file)');
  const overlap = pick('--overlap', o.overlap, 'overlap');
  const missed = pick('--missed', o.missed, 'missed');
  const missedAfter = pick('--missed-after', o.missedAfter, 'missed_after');
  const spec: ScheduleSpec = {
    name,
    tenant: o.tenant ?? '',
    cron,
    timezone: pick('--timezone', o.timezone, 'timezone') ?? '',
    overlap:
      overlap === undefined
        ? OverlapPolicy.OVERLAP_POLICY_UNSPECIFIED
        : enumFlag('--overlap', OverlapPolicy, 'OVERLAP_POLICY_', overlap.replace(/-/g, '_')),
    missed:
      missed === undefined
        ? MissedPolicy.MISSED_POLICY_UNSPECIFIED
        : enumFlag('--missed', MissedPolicy, 'MISSED_POLICY_', missed.replace(/-/g, '_')),
    missedAfterSeconds: missedAfter === undefined ? 0 : seconds('--missed-after', missedAfter),
    job: jobOf(command, o, file),
    template: o.template ?? '',
    params: paramsOf(o.param ?? []),
  };
  if (o.param && o.template === undefined) throw new UsageError('--param goes with --template');
  const res = await withConnection(o, (conn) =>
    unary(conn, 'ScheduleService.CreateSchedule', conn.schedules.createSchedule.bind(conn.schedules), { spec }),
  );
  if (!res.schedule) throw new Error('ScheduleService.CreateSchedule returned no schedule');
  if (o.json) return printJson(Schedule.toJSON(res.schedule));
  process.stdout.write(`schedule ${name} created; next: ${res.schedule.nextTicks[0] ?? 'never'}\n`);
}

/** The job from the flags and command, or from -f; none with --template. */
function jobOf(command: string[], o: CreateOptions, file: ScheduleFile | undefined): JobSpec | undefined {
  const sources = [o.file !== undefined, o.template !== undefined, command.length > 0 || o.script !== undefined].filter(Boolean).length;
  if (sources > 1) throw new UsageError('give the job one way: a command after -- (or --script), -f FILE, or --template');
  if (o.template !== undefined) return undefined;
  if (!file) return buildSpec(o, command);
  if (file.job.kind !== 'job') throw new UsageError(`${o.file}: a schedule runs one job; for a pipeline, store it as a template`);
  return JobSpec.fromPartial({ ...file.job.specs[0], tenant: o.tenant ?? '' });
}

/** What a -f file may say of the schedule itself, under `schedule:`. */
interface FileSchedule {
  cron?: string;
  timezone?: string;
  overlap?: string;
  missed?: string;
  missed_after?: string;
}

const FILE_SCHEDULE_KEYS: ReadonlyArray<keyof FileSchedule> = ['cron', 'timezone', 'overlap', 'missed', 'missed_after'];

interface ScheduleFile {
  job: ReturnType<typeof specsFromFile>;
  schedule: FileSchedule;
}

/**
 * A job spec file, parsed as the server parses templates, with an optional
 * `schedule:` map of the schedule's own settings; errors name the key and the line.
 */
function readSpecFile(path: string): ScheduleFile {
  try {
    const yaml = YamlText.parse(readFileSync(path, 'utf8'), path);
    const data = yaml.toJS();
    if (!data || typeof data !== 'object' || Array.isArray(data) || !('schedule' in data)) {
      return { job: specsFromFile(data, yaml, { lenientNumbers: false }), schedule: {} };
    }
    const { schedule: raw, ...job } = data as Record<string, unknown>;
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return yaml.fail(['schedule'], `a map of ${FILE_SCHEDULE_KEYS.join(', ')}`);
    const schedule: FileSchedule = {};
    for (const [k, v] of Object.entries(raw)) {
      if (!(FILE_SCHEDULE_KEYS as readonly string[]).includes(k))
        yaml.fail(['schedule', k], `unknown key "${k}" (${FILE_SCHEDULE_KEYS.join(', ')})`);
      if (typeof v !== 'string' && typeof v !== 'number') yaml.fail(['schedule', k], 'a string');
      schedule[k as keyof FileSchedule] = String(v);
    }
    return { job: specsFromFile(job, yaml, { lenientNumbers: false }), schedule };
  } catch (err) {
    throw new UsageError(isValidation(err) ? (err as Error).message : `-f ${path}: ${(err as Error).message}`, { cause: err });
  }
}

function seconds(flag: string, text: string): number {
  try {
    return parseDuration(text);
  } catch (err) {
    throw new UsageError(`${flag}: ${(err as Error).message}`, { cause: err });
  }
}

async function ls(o: NamedOptions): Promise<void> {
  const res = await withConnection(o, (conn) =>
    unary(conn, 'ScheduleService.ListSchedules', conn.schedules.listSchedules.bind(conn.schedules), { tenant: o.tenant ?? '' }),
  );
  if (o.json) return printJson(res.schedules.map((s) => Schedule.toJSON(s)));
  const rows = res.schedules.map((s) => {
    const last = s.runs[0];
    return [
      s.spec?.tenant ?? '',
      s.spec?.name ?? '',
      s.spec?.cron ?? '',
      s.spec?.timezone || 'UTC',
      s.paused ? 'paused' : 'active',
      s.nextTicks[0] ?? '-',
      last ? `${last.scheduledAt} ${last.jobIds[0] ? stateName(last.state) : 'skipped'}` : '-',
    ];
  });
  process.stdout.write(`${table(['TENANT', 'NAME', 'CRON', 'TIMEZONE', 'STATE', 'NEXT', 'LAST RUN'], rows)}\n`);
}

function describe(s: Schedule): string {
  const spec = s.spec;
  const what = spec?.template
    ? `template ${spec.template}${
        Object.keys(spec.params).length
          ? ` (${Object.entries(spec.params)
              .map(([k, v]) => `${k}=${v}`)
              .join(', ')})`
          : ''
      }`
    : commandText(spec?.job?.argv ?? [], spec?.job?.script ?? '');
  const head = keyValues([
    ['name', spec?.name],
    ['tenant', spec?.tenant],
    ['cron', spec?.cron],
    ['timezone', spec?.timezone || 'UTC'],
    ['state', s.paused ? 'paused' : 'active'],
    ['overlap', enumChoice(OverlapPolicy, 'OVERLAP_POLICY_', spec?.overlap)],
    ['missed', `${enumChoice(MissedPolicy, 'MISSED_POLICY_', spec?.missed)} (after ${spec?.missedAfterSeconds ?? 0}s)`],
    ['runs', what],
    ['created', `${s.createdAt} by ${s.createdBy}`],
    ['last tick', s.lastTick],
    ['next ticks', s.nextTicks.join(', ') || (s.paused ? '(paused)' : 'never')],
  ]);
  const runs = s.runs.map((r) => [r.scheduledAt ?? '', r.jobIds.join(',') || '-', r.jobIds.length ? stateName(r.state) : '-', r.note]);
  return runs.length
    ? `${head}\nlast runs:\n${indent(table(['SCHEDULED AT', 'JOB', 'STATE', 'NOTE'], runs))}`
    : `${head}\nlast runs: none yet`;
}

/** An enum value as its flag spells it: `cancel-previous`. */
function enumChoice(values: Record<string, string | number>, prefix: string, v: number | undefined): string {
  const name = typeof v === 'number' ? values[v] : undefined;
  return typeof name === 'string' ? name.slice(prefix.length).toLowerCase().replace(/_/g, '-') : 'unknown';
}

async function trigger(name: string, o: NamedOptions): Promise<void> {
  const res = await withConnection(o, (conn) =>
    unary(conn, 'ScheduleService.TriggerSchedule', conn.schedules.triggerSchedule.bind(conn.schedules), { name, tenant: o.tenant ?? '' }),
  );
  if (o.json) return printJson({ schedule: res.schedule && Schedule.toJSON(res.schedule), run: res.run && ScheduleRun.toJSON(res.run) });
  const ids = res.run?.jobIds ?? [];
  process.stdout.write(ids.length > 0 ? `${ids.join('\n')}\n` : `schedule ${name}: ${res.run?.note ?? 'nothing started'}\n`);
}
