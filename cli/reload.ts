/**
 * SIGHUP for the long-running commands. For `server` and `agent` SIGHUP
 * reloads what can change live (systemd's ExecReload sends it): the
 * `--config` file is read again, through the same parsers as at start, and
 * the flags it changed are applied when the command says they can change live
 * (`Reloadable.live`), one log line per key (`from` -> `to`); any other
 * changed key is logged as needing a restart and left as it was. A file that
 * does not read (bad YAML, unknown key, bad value, a check of the command's
 * own refusing it) is refused whole: an error naming the key and line, and
 * nothing changes. `runmesh dev` belongs to the terminal it was started in,
 * where SIGHUP means the terminal went away: it stops as on Ctrl-C
 * (`untilHangup`). Either way SIGHUP no longer takes Node's default, which
 * ends the process at once and skips every clean-up.
 */
import { isDeepStrictEqual } from 'node:util';
import type { Command } from 'commander';
import type { Logger } from 'pino';
import { flagsWith, keyOfAttribute } from './config-file.js';
import { LOG_LEVELS } from './flags.js';

export type Flags = Record<string, unknown>;

/** What a command can change while it runs. `--log-level` is handled here for every command. */
export interface Reloadable {
  /** Attribute names (commander's camelCase) that can change live, beside logLevel. */
  live: readonly string[];
  /**
   * Checks `next` (every flag, as after a restart) and returns what applies
   * the `changed` live ones; throws to refuse the reload, before anything
   * changed. Called on every SIGHUP, changed or not (a file a flag names, such
   * as --trusted-keys, may have new contents).
   */
  prepare(next: Flags, changed: ReadonlySet<string>): () => void;
}

/** Resolves on the first SIGHUP, and handles every later one (a second SIGHUP while stopping must not end the process uncleanly). */
export function untilHangup(): Promise<'SIGHUP'> {
  return new Promise((resolve) => process.on('SIGHUP', () => resolve('SIGHUP')));
}

/** While a command starts (before it can reload), SIGHUP is logged and ignored rather than ending the process; call the result to stop. */
export function holdHangup(log: Logger): () => void {
  const on = (): void => log.warn('SIGHUP while starting: ignored; send it again once started');
  process.on('SIGHUP', on);
  return () => void process.off('SIGHUP', on);
}

/**
 * Reloads on every SIGHUP until the returned function is called. `logger` is
 * the process's root logger (its children follow its level); `command` is the
 * running command, with its flags as parsed at start.
 */
export function reloadOnHangup(command: Command, logger: Logger, reloadable: Reloadable): () => void {
  const reload = reloader(command, logger, reloadable);
  const on = (): void => reload();
  process.on('SIGHUP', on);
  return () => void process.off('SIGHUP', on);
}

/** One reload, as SIGHUP runs it (exported for the tests of its log lines). */
export function reloader(command: Command, logger: Logger, reloadable: Reloadable): () => void {
  const log = logger.child({ component: 'reload' });
  const current: Flags = { ...command.opts() };
  const live = new Set(['logLevel', ...reloadable.live]);
  return () => {
    const file = command.getOptionValue('config') as string | undefined;
    let next: Flags;
    let apply: () => void;
    let changed: string[];
    try {
      next = file === undefined ? current : flagsWith(command, file);
      changed = Object.keys(next).filter((k) => !isDeepStrictEqual(next[k], current[k]));
      apply = reloadable.prepare(next, new Set(changed.filter((k) => live.has(k))));
    } catch (err) {
      log.error({ file, err: (err as Error).message }, 'SIGHUP: the config file is refused; nothing changed');
      return;
    }
    const before = logger.level;
    apply();
    const level = next.logLevel as string;
    // Said at whichever of the two levels says more, so the lines survive a move to a quieter level.
    logger.level = moreVerbose(before, level);
    for (const k of changed) {
      const line = { key: keyOfAttribute(command, k), from: current[k], to: next[k] };
      if (live.has(k)) log.info(line, 'reloaded');
      else log.warn(line, 'changed in the config file: needs a restart, not applied');
    }
    if (changed.length === 0)
      log.info({ file }, file === undefined ? 'SIGHUP: nothing to reload (no --config)' : 'SIGHUP: nothing changed');
    logger.level = level;
    for (const k of changed) if (live.has(k)) current[k] = next[k];
  };
}

function moreVerbose(a: string, b: string): string {
  const rank = (l: string): number => (LOG_LEVELS as readonly string[]).indexOf(l);
  return rank(a) <= rank(b) ? a : b;
}
