import type { Command } from 'commander';

/** `hearth remote`: filled in by the Remote Bazel work. */
export function registerRemoteCommand(_program: Command): void {}
