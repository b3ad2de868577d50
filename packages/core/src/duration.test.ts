import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { formatDurationMs, parseDurationMs } from './duration.ts';

describe('parseDurationMs', () => {
  it('accepts unit suffixes and their combinations', () => {
    const cases: Array<[string, number]> = [
      ['1500ms', 1500],
      ['90s', 90_000],
      ['10m', 600_000],
      ['2h', 7_200_000],
      ['1h30m', 5_400_000],
      ['1m30s', 90_000],
      ['1h0m5s250ms', 3_605_250],
      ['1.5s', 1500],
      ['0.5m', 30_000],
      ['0s', 0],
    ];
    for (const [text, ms] of cases) assert.equal(parseDurationMs(text), ms, text);
  });

  it('a bare number is seconds', () => {
    assert.equal(parseDurationMs('90'), 90_000);
    assert.equal(parseDurationMs('0.25'), 250);
    assert.equal(parseDurationMs('0'), 0);
  });

  it('trims surrounding whitespace', () => {
    assert.equal(parseDurationMs('  10s\n'), 10_000);
    assert.equal(parseDurationMs(' 30 '), 30_000);
  });

  it('rounds to whole milliseconds', () => {
    assert.equal(parseDurationMs('1.0004s'), 1000);
    assert.equal(parseDurationMs('0.0006s'), 1);
  });

  it('rejects anything else with a message that says what is accepted', () => {
    for (const bad of ['', '   ', 'abc', '10x', '10 s', '1h 30m', '10s junk', 'junk 10s', '-5s', '-5', '1d', '1e3', 's', '.5s', '10S', '1,5s']) {
      assert.throws(() => parseDurationMs(bad), (err: Error) => {
        assert.match(err.message, /invalid duration/);
        assert.match(err.message, /90s, 10m, 1h30m/);
        assert.ok(err.message.includes(JSON.stringify(bad)), `message quotes the input: ${err.message}`);
        return true;
      }, JSON.stringify(bad));
    }
  });
});

describe('formatDurationMs', () => {
  it('milliseconds below a second, seconds with precision, then minutes', () => {
    const cases: Array<[number, string]> = [
      [0, '0ms'],
      [1, '1ms'],
      [999, '999ms'],
      [1000, '1.00s'],
      [1234, '1.23s'],
      [9990, '9.99s'],
      [10_000, '10.0s'],
      [12_345, '12.3s'],
      [59_900, '59.9s'],
      [60_000, '1m0s'],
      [90_000, '1m30s'],
      [119_000, '1m59s'],
      [3_600_000, '60m0s'],
    ];
    for (const [ms, text] of cases) assert.equal(formatDurationMs(ms), text, String(ms));
  });

  it('round-trips through parseDurationMs for whole seconds and minutes', () => {
    for (const ms of [60_000, 90_000, 150_000, 3_600_000]) assert.equal(parseDurationMs(formatDurationMs(ms)), ms);
  });

  // Known bug (reported): rounding is applied after choosing the unit, so values just under a
  // unit boundary print as "1000ms", "60.0s" or "1m60s".
  it('rounding never produces an out-of-range field', () => {
    assert.equal(formatDurationMs(999.6), '1.00s');
    assert.equal(formatDurationMs(59_950), '1m0s');
    assert.equal(formatDurationMs(119_500), '2m0s');
  });
});
