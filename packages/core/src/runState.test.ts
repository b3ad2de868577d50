import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EXIT_INTERRUPTED, RUN_STATES, TERMINAL_STATES, exitCodeForSignal, isInfraExitCode, isTerminal } from './runState.ts';

describe('run states', () => {
  it('queued and running are live; everything else is terminal', () => {
    assert.deepEqual([...RUN_STATES].filter((s) => !isTerminal(s)), ['queued', 'running']);
    assert.deepEqual([...RUN_STATES].filter(isTerminal).sort(), ['cancelled', 'failed', 'succeeded', 'timed_out']);
    assert.equal(TERMINAL_STATES.size, 4);
  });
});

describe('exitCodeForSignal', () => {
  it('is 128 + the signal number (shell convention)', () => {
    assert.equal(exitCodeForSignal('SIGKILL'), 137);
    assert.equal(exitCodeForSignal('SIGTERM'), 143);
    assert.equal(exitCodeForSignal('SIGINT'), 130);
    assert.equal(exitCodeForSignal('SIGHUP'), 129);
    assert.equal(exitCodeForSignal('SIGQUIT'), 131);
    assert.equal(exitCodeForSignal('SIGABRT'), 134);
    assert.equal(exitCodeForSignal('SIGSEGV'), 139);
    assert.equal(exitCodeForSignal('SIGPIPE'), 141);
  });

  it('never reports success for a signal death', () => {
    for (const s of ['SIGKILL', 'SIGTERM', 'SIGUNKNOWN', '']) assert.ok(exitCodeForSignal(s) >= 128, s);
  });
});

describe('isInfraExitCode', () => {
  it('is true exactly for Bazel\'s infrastructure codes 36..39', () => {
    for (let code = 0; code <= 255; code++) assert.equal(isInfraExitCode(code), code >= 36 && code <= 39, String(code));
  });

  it('build, test and interrupt codes are not infrastructure errors', () => {
    for (const code of [0, 1, 2, 3, 4, EXIT_INTERRUPTED, 137, 143]) assert.equal(isInfraExitCode(code), false, String(code));
    assert.equal(EXIT_INTERRUPTED, 8);
  });
});
