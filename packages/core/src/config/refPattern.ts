/**
 * Ref patterns used by workflow triggers (`push.branches`, `push.tags`, `pull_request.branches`,
 * `allow_concurrent_runs_on_branches`).
 *
 * Syntax (reference-product-spec §1.4, BuildBuddy's `matchesRestrictedGlob`):
 * - Everything is an exact, case-sensitive string match, except
 * - the FIRST `*`, which matches any text (including `/` and the empty string). Any later `*` is a
 *   literal `*` (as in the reference). Git refs cannot contain `*`, so such a pattern can only match
 *   through its first `*`; the config parser warns about it.
 * - Prefix and suffix may not overlap: the text must be at least as long as prefix + suffix, so
 *   `ab*ba` does not match `aba` (the reference's plain HasPrefix && HasSuffix would; hearth fixes it).
 * - A leading `!` negates a pattern (only in lists, see {@link matchesAnyRefPattern}).
 */

/**
 * Whether one pattern (without negation: a leading `!` here is a literal character) matches `ref`.
 */
export function matchesRefPattern(pattern: string, ref: string): boolean {
  const star = pattern.indexOf('*');
  if (star < 0) return pattern === ref;
  const prefix = pattern.slice(0, star);
  const suffix = pattern.slice(star + 1);
  return ref.length >= prefix.length + suffix.length && ref.startsWith(prefix) && ref.endsWith(suffix);
}

/**
 * Evaluates a pattern list in order; the LAST pattern that matches decides: a plain pattern means
 * "match", a `!`-negated one means "no match". If no pattern matches (or the list is empty), false.
 * Example: `['*', '!release-*', 'release-special']` matches `main` and `release-special`, not
 * `release-1`.
 */
export function matchesAnyRefPattern(patterns: readonly string[], ref: string): boolean {
  let matched = false;
  for (const p of patterns) {
    const negated = p.startsWith('!');
    if (matchesRefPattern(negated ? p.slice(1) : p, ref)) matched = !negated;
  }
  return matched;
}

/**
 * A human note about a pattern that is valid but probably not what the author meant, or undefined.
 * Used by the config parser to emit warnings.
 */
export function refPatternWarning(pattern: string): string | undefined {
  const body = pattern.startsWith('!') ? pattern.slice(1) : pattern;
  if (body === '') return 'empty pattern matches nothing';
  const first = body.indexOf('*');
  if (first >= 0 && body.indexOf('*', first + 1) >= 0) {
    return `only the first "*" in "${pattern}" is a wildcard; later "*" characters must match literally, and git refs cannot contain "*"`;
  }
  return undefined;
}
