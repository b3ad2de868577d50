import type { Command } from 'commander';

/**
 * `hearth remote …`: everything after `remote` is parsed by hearth's own parser, because Bazel
 * startup flags, the command and its args must pass through untouched.
 */
export function registerRemoteCommand(program: Command): void {
  program
    .command('remote')
    .description('Run Bazel on a warm remote runner as if it ran here (`hearth remote --help` for details).')
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .passThroughOptions()
    .argument('[args...]')
    .action(async (argv: string[]) => {
      const { runRemote } = await import('./remote/remote.ts');
      const code = await runRemote(argv, { stdout: process.stdout, stderr: process.stderr, cwd: process.cwd(), env: process.env });
      process.exitCode = code;
    });
}
