import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { matchesAnyRefPattern, matchesRefPattern, refPatternWarning } from './refPattern.ts';

describe('matchesRefPattern', () => {
  it('matches exactly without a wildcard', () => {
    assert.equal(matchesRefPattern('main', 'main'), true);
    assert.equal(matchesRefPattern('main', 'main2'), false);
    assert.equal(matchesRefPattern('main', 'Main'), false);
    assert.equal(matchesRefPattern('main', ''), false);
  });

  it('"*" alone matches anything, including slashes and the empty string', () => {
    assert.equal(matchesRefPattern('*', 'main'), true);
    assert.equal(matchesRefPattern('*', 'feature/x/y'), true);
    assert.equal(matchesRefPattern('*', ''), true);
  });

  it('a prefix wildcard spans slashes', () => {
    assert.equal(matchesRefPattern('release/*', 'release/a/b'), true);
    assert.equal(matchesRefPattern('release/*', 'release/'), true);
    assert.equal(matchesRefPattern('release/*', 'release'), false);
    assert.equal(matchesRefPattern('release/*', 'prerelease/a'), false);
  });

  it('a suffix wildcard', () => {
    assert.equal(matchesRefPattern('*-stable', 'v1-stable'), true);
    assert.equal(matchesRefPattern('*-stable', 'a/b-stable'), true);
    assert.equal(matchesRefPattern('*-stable', 'v1-stable2'), false);
  });

  it('a middle wildcard needs the text to be at least as long as prefix + suffix', () => {
    assert.equal(matchesRefPattern('ab*ba', 'aba'), false);
    assert.equal(matchesRefPattern('ab*ba', 'abba'), true);
    assert.equal(matchesRefPattern('ab*ba', 'abXba'), true);
    assert.equal(matchesRefPattern('a*a', 'a'), false);
    assert.equal(matchesRefPattern('a*a', 'aa'), true);
  });

  it('only the first "*" is a wildcard; later ones are literal', () => {
    assert.equal(matchesRefPattern('a*b*', 'aXb*'), true);
    assert.equal(matchesRefPattern('a*b*', 'aXbY'), false);
    assert.equal(matchesRefPattern('**', 'x*'), true);
    assert.equal(matchesRefPattern('**', 'x'), false);
  });

  it('treats "!" literally (negation belongs to lists)', () => {
    assert.equal(matchesRefPattern('!main', '!main'), true);
    assert.equal(matchesRefPattern('!main', 'main'), false);
  });
});

describe('matchesAnyRefPattern', () => {
  it('an empty list matches nothing', () => {
    assert.equal(matchesAnyRefPattern([], 'main'), false);
  });

  it('no matching pattern → false', () => {
    assert.equal(matchesAnyRefPattern(['dev', 'release/*'], 'main'), false);
  });

  it('the last matching pattern wins', () => {
    assert.equal(matchesAnyRefPattern(['*', '!main'], 'main'), false);
    assert.equal(matchesAnyRefPattern(['!main', '*'], 'main'), true);
    assert.equal(matchesAnyRefPattern(['*', '!main'], 'dev'), true);
  });

  it('follows the reference example ["*", "!release-*", "release-special"]', () => {
    const patterns = ['*', '!release-*', 'release-special'];
    assert.equal(matchesAnyRefPattern(patterns, 'release-20210101'), false);
    assert.equal(matchesAnyRefPattern(patterns, 'release-special'), true);
    assert.equal(matchesAnyRefPattern(patterns, 'main'), true);
  });

  it('a lone negation never makes a match', () => {
    assert.equal(matchesAnyRefPattern(['!main'], 'dev'), false);
    assert.equal(matchesAnyRefPattern(['!main'], 'main'), false);
    assert.equal(matchesAnyRefPattern(['!*'], 'main'), false);
  });
});

describe('refPatternWarning', () => {
  it('flags a second "*" and empty patterns, accepts ordinary ones', () => {
    assert.equal(refPatternWarning('release/*'), undefined);
    assert.equal(refPatternWarning('!main'), undefined);
    assert.match(refPatternWarning('a*b*') ?? '', /only the first "\*"/);
    assert.equal(refPatternWarning(''), 'empty pattern matches nothing');
    assert.equal(refPatternWarning('!'), 'empty pattern matches nothing');
  });
});
