/**
 * The completion scripts as a shell runs them: bash loads the script and
 * completes through COMP_WORDS as it would at a prompt. The tree comes from
 * the real program, so the expected words are read from it too.
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { completionScript, completionTable } from './completion.js';
import { buildProgram } from './program.js';

/** What bash completes for `words` (the last one being typed). */
function complete(shell: 'bash', words: string[]): string[] {
  const script = completionScript(shell, buildProgram());
  const array = words.map((w) => `'${w}'`).join(' ');
  const out = execFileSync('bash', [
    '-c',
    `${script}\nCOMP_WORDS=(${array}); COMP_CWORD=${words.length - 1}; _runmesh; printf '%s\\n' "\${COMPREPLY[@]}"`,
  ]);
  return out.toString().split('\n').filter(Boolean);
}

describe('runmesh completion', () => {
  it('completes commands, subcommands and flags in bash', () => {
    expect(complete('bash', ['runmesh', 'jo'])).toEqual(['jobs']);
    expect(complete('bash', ['runmesh', 'submit', '--ti'])).toEqual(['--timeout']);
    const jobs = buildProgram().commands.find((c) => c.name() === 'jobs')!;
    expect(complete('bash', ['runmesh', 'jobs', ''])).toEqual([...jobs.commands.map((c) => c.name()), '--help']);
    expect(complete('bash', ['runmesh', 'jobs', 'ls', '--state', 'running', '--ol'])).toEqual(['--oldest-first']);
    expect(complete('bash', ['runmesh', 'agents', 'ls', '--j'])).toEqual(['--json']);
    expect(complete('bash', ['runmesh', 'submit', '--', 'ec'])).toEqual([]);
  });

  it('lists every command path of the program, for every shell', () => {
    const program = buildProgram();
    const paths = completionTable(program).map((n) => n.path);
    expect(paths).toContain('jobs ls');
    expect(paths).toContain('completion');
    const zsh = completionScript('zsh', program);
    expect(zsh).toContain('bashcompinit');
    execFileSync('bash', ['-n', '-c', zsh.replace(/^autoload .*$/m, '')]);
    const fish = completionScript('fish', program);
    expect(fish).toContain(`complete -c runmesh -n '__runmesh_at '\\''jobs ls'\\''' -l oldest-first -d 'list the oldest submitted first'`);
    expect(() => completionScript('tcsh', program)).toThrow(/unknown shell "tcsh"/);
  });
});
