// `dsync completion bash|zsh`: a completion script made from the command tree itself, so it
// never lags behind a new command or option. Commands, subcommands, options and the values of
// options with fixed choices (-o table|json|yaml, --mode exclusive|shared) complete.
import { Argument, type Command } from 'commander';

interface Node {
  /** "lock run", "" for the top. */
  readonly path: string;
  readonly words: string[];
}

function walk(cmd: Command, path: string, inherited: string[], out: Node[]): void {
  const own = cmd.options.filter((o) => !o.hidden).flatMap((o) => [o.short, o.long])
    .filter((x): x is string => typeof x === 'string');
  const subs = cmd.commands.filter((c) => !(c as { _hidden?: boolean })._hidden);
  out.push({ path, words: [...subs.map((c) => c.name()), ...own, ...inherited] });
  for (const c of subs) walk(c, path === '' ? c.name() : `${path} ${c.name()}`, inherited, out);
}

/** Every option with fixed choices, by flag. */
function choices(cmd: Command, out = new Map<string, readonly string[]>()):
  Map<string, readonly string[]> {
  for (const o of cmd.options) {
    if (!o.argChoices) continue;
    for (const flag of [o.short, o.long]) if (flag) out.set(flag, o.argChoices);
  }
  for (const c of cmd.commands) choices(c, out);
  return out;
}

function tree(program: Command): { nodes: Node[]; values: Map<string, readonly string[]> } {
  const globals = program.options.filter((o) => !o.hidden && o.long !== '--version')
    .flatMap((o) => [o.short, o.long]).filter((x): x is string => typeof x === 'string');
  const nodes: Node[] = [];
  walk(program, '', [], nodes);
  // Global options are accepted after any subcommand too.
  const withGlobals = nodes.map((n) => (n.path === '' ? n
    : { ...n, words: [...new Set([...n.words, ...globals])] }));
  return { nodes: withGlobals, values: choices(program) };
}

const quote = (s: string): string => `"${s.replace(/["\\$`]/g, '\\$&')}"`;

export function bashCompletion(program: Command): string {
  const { nodes, values } = tree(program);
  const paths = nodes.filter((n) => n.path !== '').map((n) => quote(n.path)).join('|');
  const cases = nodes.map((n) => `    ${quote(n.path)}) words=${quote(n.words.join(' '))};;`);
  const valueCases = [...values].map(([flag, v]) => `    ${flag}) words=${quote(v.join(' '))};;`);
  return [
    '# dsync completion for bash. Load it with: source <(dsync completion bash)',
    '_dsync() {',
    '  local cur prev cmdpath w i words',
    '  cur="${COMP_WORDS[COMP_CWORD]}"',
    '  prev="${COMP_WORDS[COMP_CWORD-1]}"',
    '  cmdpath=""',
    '  for ((i=1; i<COMP_CWORD; i++)); do',
    '    w="${COMP_WORDS[i]}"',
    '    [[ "$w" == "--" ]] && return 0',
    '    [[ "$w" == -* ]] && continue',
    '    case "${cmdpath:+$cmdpath }$w" in',
    `      ${paths}) cmdpath="\${cmdpath:+$cmdpath }$w";;`,
    '    esac',
    '  done',
    '  words=""',
    '  case "$cmdpath" in',
    ...cases,
    '  esac',
    '  case "$prev" in',
    ...valueCases,
    '  esac',
    '  COMPREPLY=( $(compgen -W "$words" -- "$cur") )',
    '}',
    'complete -F _dsync dsync',
    '',
  ].join('\n');
}

export function zshCompletion(program: Command): string {
  const { nodes, values } = tree(program);
  const paths = nodes.filter((n) => n.path !== '').map((n) => quote(n.path)).join('|');
  const cases = nodes.map((n) => `    (${quote(n.path)}) compadd -- ${n.words.join(' ')};;`);
  const valueCases = [...values].map(([flag, v]) => `    (${flag}) compadd -- ${v.join(' ')}; ` +
    'return;;');
  return [
    '#compdef dsync',
    '# dsync completion for zsh. Load it with: source <(dsync completion zsh)',
    '# (or save it as _dsync in a directory of $fpath)',
    '_dsync() {',
    // `path` is special in zsh (tied to PATH): never use it as a variable name.
    '  local cmdpath="" w i',
    '  for ((i=2; i<CURRENT; i++)); do',
    '    w=${words[i]}',
    '    [[ $w == -- ]] && return 0',
    '    [[ $w == -* ]] && continue',
    '    case "${cmdpath:+$cmdpath }$w" in',
    `      (${paths}) cmdpath="\${cmdpath:+$cmdpath }$w";;`,
    '    esac',
    '  done',
    '  case ${words[CURRENT-1]} in',
    ...valueCases,
    '  esac',
    '  case $cmdpath in',
    ...cases,
    '  esac',
    '}',
    'compdef _dsync dsync',
    '',
  ].join('\n');
}

export function addCompletionCommand(program: Command): void {
  program.command('completion')
    .description('print a shell completion script: source <(dsync completion bash)')
    .addArgument(new Argument('<shell>', 'bash or zsh').choices(['bash', 'zsh']))
    .action((shell: 'bash' | 'zsh') => {
      process.stdout.write(shell === 'bash' ? bashCompletion(program) : zshCompletion(program));
    });
}
