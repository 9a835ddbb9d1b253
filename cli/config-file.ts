/**
 * `--config FILE` for `runmesh server`, `agent` and `dev`: a YAML mapping
 * whose keys are the command's flag names without the leading dashes, in
 * kebab case as typed (`data-dir`, `rate-token`); a `--no-x` flag is the key
 * `x` with a boolean (`websocket: false`). Each value goes through the flag's
 * own parser, so a bad value reads as the flag's error, prefixed with the file,
 * line and key. A repeatable flag takes a list (or one value). Unknown keys,
 * and a key given twice, are refused. Precedence: the command line (and commander's own environment
 * variables) > the file > the defaults.
 *
 * The `yaml` package, not JSON or a home-made parser: operators write YAML
 * (Kubernetes ConfigMaps, Ansible), and it keeps every node's source range, so
 * each error names its line.
 */
import { readFileSync } from 'node:fs';
import { type Command, type Option, Option as CommanderOption } from 'commander';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node as YamlNode } from 'yaml';
import { UsageError } from './errors.js';

/** One flag set by the file: its key as written, the line it is on, and the value its parser made. */
export interface ConfigValue {
  key: string;
  line: number;
  value: unknown;
}

/** Keys that are not settings: giving them in a file is refused like an unknown key. */
const NOT_SETTINGS = new Set(['config', 'print-systemd-unit', 'help', 'version']);

export function configOption(): Option {
  return new CommanderOption(
    '--config <file>',
    'read flags from this YAML file: keys are the flag names without dashes (data-dir: /var/lib/runmesh); flags given on the command line win',
  );
}

/** The file's key for an option: its long name without dashes, the positive name for `--no-x`. */
export function keyOf(option: Option): string {
  const name = (option.long ?? '').replace(/^--/, '');
  return option.negate ? name.replace(/^no-/, '') : name;
}

/** A repeatable option collects into an array: its default is one. */
const repeatable = (option: Option): boolean => Array.isArray(option.defaultValue);

/**
 * Reads `file` as settings for `command`: attribute name (commander's, camelCase) to value.
 * Throws UsageError naming the file, the line and the key for anything wrong in it.
 */
export function readConfigFile(command: Command, file: string): Map<string, ConfigValue> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`--config ${file}: ${(err as Error).message}`);
  }
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: false, prettyErrors: false });
  const bad = doc.errors[0];
  if (bad) throw new UsageError(`${file}:${bad.linePos?.[0].line ?? 1}: ${bad.message.split('\n')[0]}`);
  const values = new Map<string, ConfigValue>();
  if (doc.contents === null) return values; // an empty file sets nothing
  if (!isMap(doc.contents)) throw new UsageError(`${file}:1: expected a mapping of flag names to values`);
  const options = new Map(command.options.map((o) => [keyOf(o), o]));
  const lineOf = (node: YamlNode | null | undefined): number => (node?.range ? lines.linePos(node.range[0]).line : 1);
  for (const pair of doc.contents.items) {
    const keyNode = pair.key as YamlNode | null;
    const key = isScalar(keyNode) ? String(keyNode.value) : '';
    const line = lineOf(keyNode);
    const at = `${file}:${line}: ${key}`;
    const option = options.get(key);
    const twice = option && values.get(option.attributeName());
    if (twice) throw new UsageError(`${at}: given twice (first on line ${twice.line})`);
    if (!option || NOT_SETTINGS.has(key))
      throw new UsageError(
        `${at}: unknown key (the keys are ${command.name()}'s flag names without dashes; see runmesh ${command.name()} --help)`,
      );
    values.set(option.attributeName(), { key, line, value: valueOf(option, pair.value, at) });
  }
  return values;
}

/** The value the flag would have had, had the file's value been typed after it. */
function valueOf(option: Option, node: YamlNode | null, at: string): unknown {
  if (node === null || (isScalar(node) && node.value === null)) throw new UsageError(`${at}: has no value`);
  if (option.negate || option.isBoolean()) {
    if (!isScalar(node) || typeof node.value !== 'boolean') throw new UsageError(`${at}: expected true or false`);
    return node.value;
  }
  const items = isSeq(node) ? node.items : [node];
  if (isSeq(node) && !repeatable(option)) throw new UsageError(`${at}: takes one value, not a list`);
  const texts = items.map((item) => {
    const value = isScalar(item) ? item.value : undefined;
    if (typeof value !== 'string' && typeof value !== 'number')
      throw new UsageError(`${at}: expected ${repeatable(option) ? 'a string, a number or a list of them' : 'a string or a number'}`);
    return String(value);
  });
  const parse = option.parseArg;
  if (!parse) return repeatable(option) ? texts : texts[0];
  try {
    return texts.reduce<unknown>((previous, text) => parse(text, previous), undefined);
  } catch (err) {
    // The parsers name the flag ("--slots: expected ..."): the key already says which.
    throw new UsageError(`${at}: ${(err as Error).message.replace(`${option.long ?? ''}: `, '')}`);
  }
}

/** What a flag is when neither the command line nor the file sets it. */
function defaultOf(option: Option): unknown {
  return option.defaultValue === undefined && option.negate ? true : option.defaultValue;
}

/** Set by the command line or by commander from an environment variable: the file does not override it. */
const fromCommandLine = (command: Command, attr: string): boolean => {
  const source = command.getOptionValueSource(attr);
  return source === 'cli' || source === 'env';
};

/** Sets, on `command`, every flag the file has that the command line did not set. */
export function applyConfigFile(command: Command, file: string): void {
  for (const [attr, { value }] of readConfigFile(command, file))
    if (!fromCommandLine(command, attr)) command.setOptionValueWithSource(attr, value, 'config');
}

/**
 * The flags as they would be, were the command started again now with `file`:
 * the command line's own, then the file's, then the defaults. Throws as
 * {@link readConfigFile} does.
 */
export function flagsWith(command: Command, file: string): Record<string, unknown> {
  const values = readConfigFile(command, file);
  return Object.fromEntries(
    command.options.map((o) => {
      const attr = o.attributeName();
      if (fromCommandLine(command, attr)) return [attr, command.getOptionValue(attr)];
      return [attr, values.has(attr) ? values.get(attr)!.value : defaultOf(o)];
    }),
  );
}

/** The preAction hook: `--config` applied before the action reads its flags. */
export function useConfigFile(command: Command): Command {
  return command.addOption(configOption()).hook('preAction', (_, action) => {
    const file = action.getOptionValue('config') as string | undefined;
    if (file !== undefined) applyConfigFile(action, file);
  });
}

/** The file key of a flag's attribute name, for log lines and errors (`rateToken` -> `rate-token`). */
export function keyOfAttribute(command: Command, attr: string): string {
  const option = command.options.find((o) => o.attributeName() === attr);
  return option ? keyOf(option) : attr;
}
