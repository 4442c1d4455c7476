// aion completion <bash|zsh|fish>: prints a shell completion script. The scripts ask
// `aion __complete` for candidates at completion time, so workflow types, version prefixes
// and workflow ids come from the state directory as it is when you press TAB.
import type { Command } from 'commander';
import { action, type CommandContext } from '../context.js';
import { usageError } from '../output.js';
import type { Register } from './index.js';

export const SCRIPTS: Record<string, string> = {
  bash: `# aion completion for bash. Load it with:  eval "$(aion completion bash)"
# (or save it as /etc/bash_completion.d/aion, or ~/.local/share/bash-completion/completions/aion)
_aion_complete() {
  local IFS=$'\\n'
  COMPREPLY=($(aion __complete -- "\${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null))
}
complete -o default -F _aion_complete aion
`,
  zsh: `#compdef aion
# aion completion for zsh. Load it with:  eval "$(aion completion zsh)"  (after compinit)
# (or save it as _aion in a directory on your $fpath)
_aion() {
  local -a candidates
  candidates=("\${(@f)$(aion __complete -- "\${(@)words[2,CURRENT]}" 2>/dev/null)}")
  if (( \${#candidates[@]} )) && [[ -n "\${candidates[1]}" ]]; then
    compadd -- "\${candidates[@]}"
  else
    _files
  fi
}
if (( $+functions[compdef] )); then compdef _aion aion; fi
`,
  fish: `# aion completion for fish. Load it with:  aion completion fish | source
# (or save it as ~/.config/fish/completions/aion.fish)
function __aion_complete
    set -l before (commandline -opc)
    # "$current": exactly one word, empty at a fresh argument.
    set -l current (commandline -ct)
    set -l out (aion __complete -- $before[2..-1] "$current" 2>/dev/null)
    if test (count $out) -gt 0
        printf '%s\\n' $out
    else
        __fish_complete_path (commandline -ct)
    end
end
complete -c aion -f -a '(__aion_complete)'
`,
};

export interface CompletionOptions {
  shell: string;
}

export async function runCompletion(ctx: CommandContext, opts: CompletionOptions): Promise<void> {
  const script = Object.hasOwn(SCRIPTS, opts.shell) ? SCRIPTS[opts.shell] : undefined;
  if (!script) throw usageError(`unknown shell '${opts.shell}': expected bash, zsh or fish`, 'aion completion bash');
  if (ctx.out.json) ctx.out.result({ shell: opts.shell, script }, () => '');
  else ctx.out.streams.stdout.write(script);
}

export const registerCompletion: Register = (program: Command, streams) => {
  program
    .command('completion')
    .summary('print a shell completion script (bash, zsh or fish)')
    .description(
      'Print a completion script for bash, zsh or fish: commands, options and, read from ' +
        'the state directory when you press TAB, workflow types, version prefixes and ' +
        'workflow ids.',
    )
    .argument('<shell>', 'bash, zsh or fish')
    .addHelpText(
      'after',
      `
Examples:
  $ aion completion fish > ~/.config/fish/completions/aion.fish
  $ eval "$(aion completion bash)"          # in ~/.bashrc
  $ eval "$(aion completion zsh)"           # in ~/.zshrc, after compinit`,
    )
    .action(
      action(async (ctx, shell: string) => runCompletion(ctx, { shell }), streams),
    );
};
