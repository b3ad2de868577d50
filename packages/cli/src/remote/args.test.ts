import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, test } from 'node:test';
import { parseKeyValues, parseRemoteArgs, shellQuote, UsageError } from './args.ts';

describe('parseRemoteArgs', () => {
  test('defaults: just a command and its args', () => {
    const a = parseRemoteArgs(['test', '//...']);
    assert.equal(a.command, 'test');
    assert.deepEqual(a.commandArgs, ['//...']);
    assert.deepEqual(a.startupFlags, []);
    assert.equal(a.server, undefined);
    assert.equal(a.fetchOutputs, false);
    assert.equal(a.runRemotely, true);
    assert.equal(a.help, false);
    assert.deepEqual(a.env, []);
  });

  test('Bazel startup flags before the command are kept, in order, next to hearth flags', () => {
    const a = parseRemoteArgs([
      '--host_jvm_args=-Xmx1g', '--server', 'http://h:1', '--nohome_rc', '--output_base=/x y', '--batch', 'build', '//a',
    ]);
    assert.deepEqual(a.startupFlags, ['--host_jvm_args=-Xmx1g', '--nohome_rc', '--output_base=/x y', '--batch']);
    assert.equal(a.server, 'http://h:1');
    assert.equal(a.command, 'build');
    assert.deepEqual(a.commandArgs, ['//a']);
  });

  test('hearth flags in both --x=v and --x v forms', () => {
    const eq = parseRemoteArgs([
      '--server=http://s', '--env=A=1', '--env=B', '--timeout=30m', '--runner_exec_properties=salt=x',
      '--remote_run_header=x-hearth-env.T=abc', '--os=linux', '--arch=amd64', '--remote=upstream', 'test',
    ]);
    const sp = parseRemoteArgs([
      '--server', 'http://s', '--env', 'A=1', '--env', 'B', '--timeout', '30m', '--runner_exec_properties', 'salt=x',
      '--remote_run_header', 'x-hearth-env.T=abc', '--os', 'linux', '--arch', 'amd64', '--remote', 'upstream', 'test',
    ]);
    for (const a of [eq, sp]) {
      assert.equal(a.server, 'http://s');
      assert.deepEqual(a.env, ['A=1', 'B']);
      assert.equal(a.timeout, '30m');
      assert.deepEqual(a.runnerExecProperties, ['salt=x']);
      assert.deepEqual(a.remoteRunHeaders, ['x-hearth-env.T=abc']);
      assert.equal(a.os, 'linux');
      assert.equal(a.arch, 'amd64');
      assert.equal(a.remote, 'upstream');
      assert.equal(a.command, 'test');
      assert.deepEqual(a.commandArgs, []);
      assert.deepEqual(a.startupFlags, []);
    }
    // A value that looks like a flag is still the value of the separate form.
    assert.deepEqual(parseRemoteArgs(['--env', '--weird', 'test']).env, ['--weird']);
    // An empty value is a value.
    assert.equal(parseRemoteArgs(['--server=', 'test']).server, '');
    // Dashes in hearth flag names are accepted like underscores.
    assert.equal(parseRemoteArgs(['--fetch-outputs', 'build']).fetchOutputs, true);
    // The =value form keeps everything after the first '=' (including newlines).
    assert.deepEqual(parseRemoteArgs(['--env=A=b=c\nd', 'test']).env, ['A=b=c\nd']);
  });

  test('everything after the command passes through untouched, including -- and hearth-looking flags', () => {
    const rest = ['//...', '--env=X', '--server', 'http://nope', '--fetch_outputs', '--script=x', '-h', '--help', '--', '--run_remotely=false', 'arg with space', ''];
    const a = parseRemoteArgs(['--server=http://real', 'test', ...rest]);
    assert.equal(a.command, 'test');
    assert.deepEqual(a.commandArgs, rest);
    assert.equal(a.server, 'http://real');
    assert.deepEqual(a.env, []);
    assert.equal(a.fetchOutputs, false);
    assert.equal(a.script, undefined);
    assert.equal(a.runRemotely, true);
    assert.equal(a.help, false);
    // The parsed value is a copy, not a view on argv.
    const argv = ['run', '//app', '--', 'x'];
    const b = parseRemoteArgs(argv);
    argv[1] = 'changed';
    assert.deepEqual(b.commandArgs, ['//app', '--', 'x']);
  });

  test('--run_remotely=false and its spellings', () => {
    for (const [argv, want] of [
      [['--run_remotely=false', 'run', '//app'], false],
      [['--run_remotely=0', 'run', '//app'], false],
      [['--run_remotely=no', 'run', '//app'], false],
      [['--norun_remotely', 'run', '//app'], false],
      [['--run_remotely', 'run', '//app'], true],
      [['--run_remotely=true', 'run', '//app'], true],
      [['--norun_remotely=false', 'run', '//app'], true],
    ] as const) {
      const a = parseRemoteArgs(argv);
      assert.equal(a.runRemotely, want, argv.join(' '));
      assert.equal(a.command, 'run');
      assert.deepEqual(a.commandArgs, ['//app']);
    }
    // A bool flag never takes the next argument as its value.
    const a = parseRemoteArgs(['--run_remotely', 'false']);
    assert.equal(a.runRemotely, true);
    assert.equal(a.command, 'false');
    assert.throws(() => parseRemoteArgs(['--run_remotely=maybe', 'run']), (e: unknown) => e instanceof UsageError && /true or false/.test(e.message));
  });

  test('--fetch_outputs', () => {
    assert.equal(parseRemoteArgs(['--fetch_outputs', 'build', '//app:hello']).fetchOutputs, true);
    assert.equal(parseRemoteArgs(['--fetch_outputs=true', 'build']).fetchOutputs, true);
    assert.equal(parseRemoteArgs(['--fetch_outputs=false', 'build']).fetchOutputs, false);
    assert.equal(parseRemoteArgs(['--nofetch_outputs', 'build']).fetchOutputs, false);
    // Last one wins, like Bazel.
    assert.equal(parseRemoteArgs(['--fetch_outputs', '--nofetch_outputs', 'build']).fetchOutputs, false);
  });

  test('--script needs no Bazel command; --help needs nothing', () => {
    const a = parseRemoteArgs(['--script', 'echo hi; exit 3']);
    assert.equal(a.script, 'echo hi; exit 3');
    assert.equal(a.command, undefined);
    assert.equal(parseRemoteArgs(['--script=']).script, '');
    assert.equal(parseRemoteArgs(['--help']).help, true);
    assert.equal(parseRemoteArgs(['-h']).help, true);
  });

  test('errors: missing command, missing value, -- before the command, exclusive flags', () => {
    const usage = (re: RegExp) => (e: unknown) => e instanceof UsageError && re.test(e.message);
    assert.throws(() => parseRemoteArgs([]), usage(/missing Bazel command/));
    assert.throws(() => parseRemoteArgs(['--server=http://x']), usage(/missing Bazel command/));
    assert.throws(() => parseRemoteArgs(['--host_jvm_args=-Xmx1g']), usage(/missing Bazel command/));
    assert.throws(() => parseRemoteArgs(['--server']), usage(/--server needs a value/));
    // ... but a hearth-looking flag without a value after the command is Bazel's business.
    assert.deepEqual(parseRemoteArgs(['test', '//...', '--env']).commandArgs, ['//...', '--env']);
    assert.throws(() => parseRemoteArgs(['--env']), usage(/--env needs a value/));
    assert.throws(() => parseRemoteArgs(['--script']), usage(/--script needs a value/));
    assert.throws(() => parseRemoteArgs(['--', 'test']), usage(/"--" before the Bazel command/));
    assert.throws(() => parseRemoteArgs(['--run_from_branch=a', '--run_from_commit=b', 'test']), usage(/exclude each other/));
  });
});

describe('parseKeyValues', () => {
  test('NAME=VALUE, NAME copied from the local env, and errors naming the flag', () => {
    assert.deepEqual(parseKeyValues(['A=1', 'B=x=y', 'C='], '--env'), { A: '1', B: 'x=y', C: '' });
    assert.deepEqual(parseKeyValues(['HOME_X'], '--env', { HOME_X: '/h' }), { HOME_X: '/h' });
    assert.throws(() => parseKeyValues(['NOPE'], '--env', {}), /--env NOPE: NOPE is not set/);
    assert.throws(() => parseKeyValues(['=1'], '--env'), /the name is empty/);
    assert.throws(() => parseKeyValues(['salt'], '--runner_exec_properties'), /--runner_exec_properties takes NAME=VALUE/);
  });
});

describe('shellQuote', () => {
  /** What bash makes of the quoted words: each argument as printf sees it, NUL-separated. */
  const throughBash = (args: string[]): string[] => {
    const out = execFileSync('bash', ['-c', `printf '%s\\0' ${args.map(shellQuote).join(' ')}`], { encoding: 'utf8' });
    return out.split('\0').slice(0, -1);
  };

  test('round-trips tricky strings through bash', () => {
    const tricky = [
      'plain', '//...', '--test_env=A=1', 'with space', '  leading and trailing  ', "it's", "''", '"double"', '$HOME', '${X:-y}',
      '$(touch /tmp/hearth-shellquote-pwned)', '`id`', 'back\\slash', '\\', 'trailing\\', 'new\nline', '\n', 'tab\there', 'ü ñ 日本 🚀',
      '*', '?', '[a]', '~', '~/x', '!', '!!', 'a;b', 'a|b', 'a&b', '<x>', '#comment', '-', '--', '', ' ', '%s', '\r\n', 'x=\'$y\' "$z"',
    ];
    assert.deepEqual(throughBash(tricky), tricky);
  });

  test('the printf form from the brief: bash -c \'printf "%s\\n" "$@"\' _ <quoted>', () => {
    const args = ['a b', "c'd", '$e', 'f\\g', 'ü'];
    const out = execFileSync('bash', ['-c', `bash -c 'printf "%s\\n" "$@"' _ ${args.map(shellQuote).join(' ')}`], { encoding: 'utf8' });
    assert.equal(out, args.map((a) => `${a}\n`).join(''));
  });

  test('safe words stay readable; everything else is quoted', () => {
    for (const w of ['test', '//...', '//app:hello', '--color=no', '--test_env=HEARTH_HELLO_FAIL=1', 'a.b/c-d_e+f@g%h,i']) assert.equal(shellQuote(w), w);
    for (const w of ['', 'a b', '~', '*', '$x', 'a\nb', 'ü']) assert.notEqual(shellQuote(w), w);
  });
});
