import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseByteQuantity, parseConfigDurationMs, parseCpuMillis } from './quantities.ts';

describe('parseConfigDurationMs', () => {
  it('parses Go durations', () => {
    assert.equal(parseConfigDurationMs('90s'), 90_000);
    assert.equal(parseConfigDurationMs('1h30m'), 5_400_000);
    assert.equal(parseConfigDurationMs('1.5h'), 5_400_000);
    assert.equal(parseConfigDurationMs('250ms'), 250);
    assert.equal(parseConfigDurationMs('2m30s500ms'), 150_500);
    assert.equal(parseConfigDurationMs('1500us'), 2); // rounded up to whole ms
    assert.equal(parseConfigDurationMs('0'), 0);
  });

  it('rejects text that is not a duration, with what to write instead', () => {
    assert.throws(() => parseConfigDurationMs('600'), { message: 'must be a duration with a unit, e.g. "600s", "600m" or "1h30m", got "600"' });
    assert.throws(() => parseConfigDurationMs('ten minutes'), { message: 'must be a duration like "30m", "1h30m" or "90s", got "ten minutes"' });
    assert.throws(() => parseConfigDurationMs('10 m'), /must be a duration/);
    assert.throws(() => parseConfigDurationMs('-5m'), /must be a duration/);
    assert.throws(() => parseConfigDurationMs('5d'), /must be a duration/);
    assert.throws(() => parseConfigDurationMs(''), /must be a duration/);
  });
});

describe('parseByteQuantity', () => {
  it('parses bytes and binary units', () => {
    assert.equal(parseByteQuantity('1024'), 1024);
    assert.equal(parseByteQuantity('8GB'), 8 * 1024 ** 3);
    assert.equal(parseByteQuantity('8G'), 8 * 1024 ** 3);
    assert.equal(parseByteQuantity('8Gi'), 8 * 1024 ** 3);
    assert.equal(parseByteQuantity('512 mib'), 512 * 1024 ** 2);
    assert.equal(parseByteQuantity('1.5KB'), 1536);
    assert.equal(parseByteQuantity('2e9'), 2_000_000_000);
  });

  it('rejects other text and zero', () => {
    assert.throws(() => parseByteQuantity('lots'), /must be a number of bytes or a size like "8GB"/);
    assert.throws(() => parseByteQuantity('8XB'), /must be a number of bytes/);
    assert.throws(() => parseByteQuantity('0'), { message: 'must be greater than 0, got "0"' });
  });
});

describe('parseCpuMillis', () => {
  it('parses cores and millicores', () => {
    assert.equal(parseCpuMillis('3'), 3000);
    assert.equal(parseCpuMillis('0.5'), 500);
    assert.equal(parseCpuMillis('8000m'), 8000);
  });

  it('rejects other text and zero', () => {
    assert.throws(() => parseCpuMillis('four'), /must be a number of cores/);
    assert.throws(() => parseCpuMillis('1.5m'), /must be a number of cores/);
    assert.throws(() => parseCpuMillis('0m'), { message: 'must be greater than 0, got "0m"' });
  });
});
