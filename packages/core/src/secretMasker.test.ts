import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SecretMasker } from './secretMasker.ts';

/** Streams `parts` through a fresh masker and returns everything it emitted, flush included. */
function stream(secrets: string[], parts: Array<string | Buffer>): string {
  const m = new SecretMasker(secrets);
  const out = parts.map((p) => Buffer.from(m.push(Buffer.from(p))));
  out.push(Buffer.from(m.flush()));
  return Buffer.concat(out).toString('utf8');
}

/** Every way to cut `text` once (at each byte), as [before, after]. */
function singleSplits(text: string): Buffer[][] {
  const b = Buffer.from(text);
  const out: Buffer[][] = [];
  for (let i = 0; i <= b.length; i++) out.push([b.subarray(0, i), b.subarray(i)]);
  return out;
}

/** Every way to cut `text` twice. */
function doubleSplits(text: string): Buffer[][] {
  const b = Buffer.from(text);
  const out: Buffer[][] = [];
  for (let i = 0; i <= b.length; i++) for (let j = i; j <= b.length; j++) out.push([b.subarray(0, i), b.subarray(i, j), b.subarray(j)]);
  return out;
}

const bytewise = (text: string) => [...Buffer.from(text)].map((x) => Buffer.from([x]));
const show = (parts: Buffer[]) => JSON.stringify(parts.map((p) => p.toString('latin1')));

/**
 * What a masker should produce for the whole text at once: every byte that belongs to any
 * occurrence of any secret is hidden; overlapping occurrences become one mask. (Texts given to it
 * have no back-to-back occurrences, whose rendering is a format choice.)
 */
function reference(secrets: string[], text: string): string {
  const buf = Buffer.from(text);
  const spans: Array<[number, number]> = [];
  for (const s of secrets.filter((x) => x.length > 0).map((x) => Buffer.from(x))) {
    for (let at = buf.indexOf(s); at >= 0; at = buf.indexOf(s, at + 1)) spans.push([at, at + s.length]);
  }
  spans.sort((a, b) => a[0] - b[0] || b[1] - a[1]);
  const merged: Array<[number, number]> = [];
  for (const [s, e] of spans) {
    const last = merged.at(-1);
    if (last && s < last[1]) last[1] = Math.max(last[1], e);
    else merged.push([s, e]);
  }
  const parts: Buffer[] = [];
  let from = 0;
  for (const [s, e] of merged) {
    parts.push(buf.subarray(from, s), SecretMasker.MASK);
    from = e;
  }
  parts.push(buf.subarray(from));
  return Buffer.concat(parts).toString('utf8');
}

function assertEverySplit(secrets: string[], text: string, want: string, opts: { double?: boolean } = {}): void {
  assert.equal(stream(secrets, [text]), want, 'unsplit');
  for (const parts of singleSplits(text)) assert.equal(stream(secrets, parts), want, `split as ${show(parts)}`);
  if (opts.double) for (const parts of doubleSplits(text)) assert.equal(stream(secrets, parts), want, `split as ${show(parts)}`);
  assert.equal(stream(secrets, bytewise(text)), want, 'one byte at a time');
}

describe('SecretMasker', () => {
  it('no secrets: push is the identity (same buffer, no copy) and flush is empty', () => {
    const m = new SecretMasker([]);
    assert.equal(m.active, false);
    const chunk = Buffer.from('hello\r\nworld\x00\xff');
    assert.equal(m.push(chunk), chunk);
    assert.equal(m.flush().length, 0);
    // Empty strings are not secrets (they would match everywhere).
    const m2 = new SecretMasker(['']);
    assert.equal(m2.active, false);
    assert.equal(m2.push(chunk), chunk);
  });

  it('no secret in the text: output is byte-identical, whatever the chunking', () => {
    const text = 'line 1\nline 2\r\nünïcödé\n\x1b[31mred\x1b[0m no newline';
    assertEverySplit(['hunter2'], text, text);
  });

  it('masks a secret split across every possible chunk boundary', () => {
    assertEverySplit(['hunter2'], 'tok=hunter2.', 'tok=***.', { double: true });
    assertEverySplit(['hunter2'], 'hunter2', '***', { double: true });
  });

  it('masks every occurrence, including back-to-back ones, across every boundary', () => {
    assertEverySplit(['hunter2'], 'a hunter2 b hunter2 hunter2 c', 'a *** b *** *** c', { double: true });
    // Back to back: one mask or two is a format choice; what matters is no leak and no
    // dependence on the chunking.
    const whole = stream(['hunter2'], ['x hunter2hunter2 y']);
    assert.match(whole, /^x (\*\*\*)+ y$/);
    assertEverySplit(['hunter2'], 'x hunter2hunter2 y', whole, { double: true });
  });

  it('masks several secrets across every boundary', () => {
    assertEverySplit(['alpha-1', 'beta-22', 'gamma'], 'x=alpha-1 y=beta-22 z=gamma!', 'x=*** y=*** z=***!', { double: true });
  });

  it('masks a multi-byte UTF-8 secret split inside a code point', () => {
    assertEverySplit(['pässwörd€'], '→pässwörd€←', '→***←', { double: true });
  });

  it('self-overlapping secret prefixes (aab in aaab) are found after a false start', () => {
    assertEverySplit(['aab'], 'aaab', 'a***', { double: true });
    assertEverySplit(['abcabd'], 'abcabcabd!', 'abc***!', { double: true });
  });

  it('holds back bytes that could start a secret, and flush emits them', () => {
    const m = new SecretMasker(['hunter2']);
    assert.equal(m.push(Buffer.from('tok=hun')).toString(), 'tok=');
    assert.equal(m.push(Buffer.from('te')).toString(), '');
    assert.equal(m.flush().toString(), 'hunte');
    // flush empties the hold: a second flush has nothing, and the masker is reusable.
    assert.equal(m.flush().length, 0);
    assert.equal(m.push(Buffer.from('ok\n')).toString(), 'ok\n');
  });

  it('a tail that looks like a secret prefix but is not one is emitted in full', () => {
    const m = new SecretMasker(['hunter2']);
    assert.equal(m.push(Buffer.from('xxhunt')).toString(), 'xx');
    assert.equal(m.push(Buffer.from('er3 ')).toString(), 'hunter3 ');
    assert.equal(m.flush().length, 0);
    // At the end of the stream, a dangling prefix is emitted by flush, not lost.
    assertEverySplit(['hunter2'], 'end: hunter', 'end: hunter');
    assertEverySplit(['hunter2'], 'hunter hunte hunt', 'hunter hunte hunt');
  });

  it('never holds back more than the longest secret minus one byte', () => {
    const m = new SecretMasker(['abcdef', 'xy']);
    const out = m.push(Buffer.from('0123456789abcde'));
    assert.equal(out.toString(), '0123456789');
    assert.equal(m.flush().toString(), 'abcde');
  });

  it('a secret that contains another is masked whole when written in one piece', () => {
    assert.equal(stream(['abc', 'abcdef'], ['xabcdefx']), 'x***x');
    assert.equal(stream(['abcdef', 'bcd'], ['xabcdefx']), 'x***x');
    assert.equal(stream(['abc', 'abcdef'], ['xabcx']), 'x***x');
  });

  // Known bug (reported): the masker replaces shorter secrets before deciding what to hold back,
  // so a longer secret whose beginning contains a shorter one leaks its tail when the chunk
  // boundary falls after the shorter one (e.g. "abc" | "def" with secrets abc and abcdef gives
  // "***def").
  it('a secret that is a prefix of another is masked whole across every boundary', () => {
    assertEverySplit(['abc', 'abcdef'], 'xabcdefx', 'x***x');
    assertEverySplit(['abc', 'abcdef'], 'xabcx', 'x***x');
  });

  it('a secret inside another is masked whole across every boundary', () => {
    assertEverySplit(['abcdef', 'bcd'], 'xabcdefx', 'x***x');
  });

  // Known bug (reported): overlapping occurrences of two different secrets leave the part of the
  // second one that does not overlap the first in clear ("abcd" with abc and bcd gives "***d").
  it('overlapping secrets are masked as one span', () => {
    assertEverySplit(['abc', 'bcd'], 'xabcdx', 'x***x');
    assertEverySplit(['bcd', 'abc'], 'xabcdx', 'x***x');
    // A secret overlapping itself: today "abababx" with secret abab prints "***abx".
    assertEverySplit(['abab'], 'abababx', '***x');
    // Realistic shape: two tokens that share one character. Today this prints "s3cr3***".
    assertEverySplit(['s3cr3t', 'tok_ABC'], 's3cr3tok_ABC', '***');
  });

  it('never emits any secret, for every split of a text full of near-misses', () => {
    const secrets = ['s3cr3t', 'tok_ABC', 'pw'];
    const text = 's3cr3 s3cr3t tok_AB tok_ABC p pw ps3cr3t.tok_ABC.pw';
    const want = reference(secrets, text);
    for (const parts of doubleSplits(text)) {
      const out = stream(secrets, parts);
      for (const s of secrets) assert.ok(!out.includes(s), `${s} leaked for ${show(parts)}: ${out}`);
      assert.equal(out, want, `split as ${show(parts)}`);
    }
  });

  it('duplicate secrets are harmless', () => {
    assertEverySplit(['hunter2', 'hunter2'], 'a hunter2 b', 'a *** b');
  });
});
