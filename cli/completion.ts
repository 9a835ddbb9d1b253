/**
 * `runmesh completion bash|zsh|fish`: a shell completion script written from
 * the command tree itself (commands, subcommands, flags), so a command added
 * to the program completes without anyone editing a script. Each shell gets
 * the same table: for every command path, the words that may follow it.
 */
import { type Command, Option } from 'commander';
import { UsageError } from './errors.js';

export const SHELLS = ['bash', 'zsh', 'fish'] as const;
export type Shell = (typeof SHELLS)[number];

/** One command path (`jobs ls`; '' for the root) and what may follow it. */
export interface Node {
  path: string;
  commands: { name: string; description: string }[];
  flags: { flag: string; description: string; takesValue: boolean }[];
}

/** Every command path in the tree with its subcommands and long flags (help included). */
export function completionTable(program: Command): Node[] {
  const out: Node[] = [];
  const walk = (c: Command, path: string[]): void => {
    const options = [...c.options, new Option('-h, --help', 'display help for command')];
    out.push({
      path: path.join(' '),
      commands: c.commands.map((s) => ({ name: s.name(), description: s.description() })),
      flags: options
        .filter((o) => o.long && !o.hidden)
        .map((o) => ({ flag: o.long!, description: o.description, takesValue: o.required || o.optional })),
    });
    for (const s of c.commands) walk(s, [...path, s.name()]);
  };
  walk(program, []);
  return out;
}

export function completionScript(shell: string, program: Command): string {
  const table = completionTable(program);
  switch (shell) {
    case 'bash':
      return bashScript(table);
    case 'zsh':
      // zsh runs bash completion functions through bashcompinit: one table, one script.
      return `# runmesh completion for zsh: source it from ~/.zshrc, after compinit\nautoload -U +X bashcompinit && bashcompinit\n${bashScript(table)}`;
    case 'fish':
      return fishScript(table);
    default:
      throw new UsageError(`completion: unknown shell "${shell}" (one of ${SHELLS.join(', ')})`);
  }
}

/** A word for a single-quoted shell string. */
const quoted = (text: string): string => `'${text.replace(/'/g, `'\\''`)}'`;
const firstLine = (text: string): string => text.split('\n')[0] ?? '';

function bashScript(table: Node[]): string {
  const paths = table.filter((n) => n.path !== '').map((n) => quoted(` ${n.path}`));
  const cases = table.map((n) => {
    const words = [...n.commands.map((c) => c.name), ...n.flags.map((f) => f.flag)].join(' ');
    return `    ${quoted(n.path === '' ? '' : ` ${n.path}`)}) words=${quoted(words)} ;;`;
  });
  return `# runmesh completion for bash (runmesh completion bash)
_runmesh() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" path="" word words i
  # The command path so far: words that extend a known path (flag values and arguments do not).
  for ((i = 1; i < COMP_CWORD; i++)); do
    word="\${COMP_WORDS[i]}"
    [[ "$word" == -- ]] && return 0
    case "$path $word" in
      ${paths.join('|')}) path="$path $word" ;;
    esac
  done
  case "$path" in
${cases.join('\n')}
    *) words='' ;;
  esac
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -o default -F _runmesh runmesh
`;
}

function fishScript(table: Node[]): string {
  const paths = table.filter((n) => n.path !== '').map((n) => quoted(n.path));
  const lines = table.flatMap((n) => {
    const at = quoted(`__runmesh_at ${quoted(n.path)}`);
    return [
      ...n.commands.map((c) => `complete -c runmesh -n ${at} -f -a ${quoted(c.name)} -d ${quoted(firstLine(c.description))}`),
      ...n.flags.map(
        (f) => `complete -c runmesh -n ${at} -l ${f.flag.slice(2)}${f.takesValue ? ' -r' : ''} -d ${quoted(firstLine(f.description))}`,
      ),
    ];
  });
  return `# runmesh completion for fish (runmesh completion fish)
set -g __runmesh_paths ${paths.join(' ')}
function __runmesh_at
  set -l path ''
  for word in (commandline -opc)[2..-1]
    test "$word" = '--'; and return 1
    set -l next (string trim -- "$path $word")
    contains -- $next $__runmesh_paths; and set path $next
  end
  test "$path" = "$argv[1]"
end
${lines.join('\n')}
`;
}

/** How to install each script, for `runmesh completion --help` and the README. */
export const INSTALL_HELP = `
Install (then open a new shell):
  bash   runmesh completion bash > ~/.local/share/bash-completion/completions/runmesh
  zsh    echo 'source <(runmesh completion zsh)' >> ~/.zshrc   (after compinit)
  fish   runmesh completion fish > ~/.config/fish/completions/runmesh.fish`;
