import { describe, expect, it } from 'vitest';
import { jsonObjectsOf } from '#shared/inference/capture-reader.ts';

/** How the drift job splits a line of a capture object into records (Firehose may join them). */
describe('jsonObjectsOf', () => {
  it('reads one record per line, and several joined without a newline', () => {
    expect(jsonObjectsOf('{"a":1}')).toEqual(['{"a":1}']);
    expect(jsonObjectsOf('  {"a":1}\r')).toEqual(['{"a":1}']);
    expect(jsonObjectsOf('')).toEqual([]);
    expect(jsonObjectsOf('{"a":{"b":[1,2]}}{"c":2}{"d":3}')).toEqual([
      '{"a":{"b":[1,2]}}',
      '{"c":2}',
      '{"d":3}',
    ]);
  });

  it('does not split inside strings, escaped quotes included', () => {
    expect(jsonObjectsOf('{"id":"x}{y"}{"id":"q\\"}{"}')).toEqual(['{"id":"x}{y"}', '{"id":"q\\"}{"}']);
  });

  it('leaves a broken tail whole, for the reader to count as skipped', () => {
    expect(jsonObjectsOf('{"a":1}{"b":')).toEqual(['{"a":1}', '{"b":']);
  });
});
