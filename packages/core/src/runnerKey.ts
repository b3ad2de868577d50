import { createHash } from 'node:crypto';

/**
 * Normalizes a git URL so that spellings of the same repository map to one runner key:
 * lower-case scheme and host, no credentials, no trailing slash or ".git", scp-style ssh
 * ("git@host:org/repo") treated like ssh://git@host/org/repo. Paths keep their case (GitHub is
 * case-insensitive but self-hosted servers are not).
 */
export function normalizeRepoUrl(url: string): string {
  let u = url.trim();
  const scp = /^([A-Za-z0-9._-]+@)?([A-Za-z0-9.-]+):(?!\/\/)(.+)$/.exec(u);
  if (scp && !/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(u)) {
    u = `ssh://${scp[1] ?? ''}${scp[2]}/${scp[3]}`;
  }
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/]*)(.*)$/.exec(u);
  if (!m) return stripSuffixes(u);
  const scheme = m[1]!.toLowerCase();
  let authority = m[2]!;
  const at = authority.lastIndexOf('@');
  if (at >= 0) authority = authority.slice(at + 1);
  authority = authority.toLowerCase();
  if ((scheme === 'https' && authority.endsWith(':443')) || (scheme === 'http' && authority.endsWith(':80'))) {
    authority = authority.replace(/:\d+$/, '');
  }
  return `${scheme}://${authority}${stripSuffixes(m[3]!)}`;
}

function stripSuffixes(path: string): string {
  let p = path;
  while (p.endsWith('/')) p = p.slice(0, -1);
  if (p.endsWith('.git')) p = p.slice(0, -4);
  while (p.endsWith('/')) p = p.slice(0, -1);
  return p;
}

/** Stable hash of a string map: key order does not matter, every key and value does. */
export function hashProperties(props: Record<string, string>): string {
  const h = createHash('sha256');
  for (const k of Object.keys(props).sort()) {
    h.update(`${k.length}:${k}=${props[k]!.length}:${props[k]}\n`);
  }
  return h.digest('hex');
}

export interface RunnerKeyInput {
  repoUrl: string;
  /** Workflow action name, or empty for Remote Bazel runs: each action keeps its own warm runners. */
  instance?: string;
  /** Includes user-chosen `salt` / `runner-recycling-key`, so those fork the key. */
  platformProperties: Record<string, string>;
  os: string;
  arch: string;
}

/**
 * RunnerKey: which warm runners can serve a run. Two runs with the same key may share a runner
 * (warm Bazel server + output base); different keys never do.
 */
export function runnerKey(input: RunnerKeyInput): string {
  const h = createHash('sha256');
  h.update('hearth-runner-key-v1\n');
  h.update(`repo=${normalizeRepoUrl(input.repoUrl)}\n`);
  h.update(`instance=${input.instance ?? ''}\n`);
  h.update(`platform=${hashProperties(input.platformProperties)}\n`);
  h.update(`os=${input.os}\narch=${input.arch}\n`);
  return h.digest('hex').slice(0, 32);
}
