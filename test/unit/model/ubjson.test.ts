import { describe, expect, it } from 'vitest';
import { decodeUbjson, UbjsonError } from '#shared/model/ubjson.ts';

/** Bytes from markers (one-character strings) and raw byte values. */
const bytes = (...parts: (string | number)[]) =>
  new Uint8Array(parts.flatMap((p) => (typeof p === 'string' ? [...p].map((c) => c.charCodeAt(0)) : [p])));

const be = (size: number, write: (view: DataView) => void) => {
  const view = new DataView(new ArrayBuffer(size));
  write(view);
  return [...new Uint8Array(view.buffer)];
};

describe('decodeUbjson', () => {
  it('decodes every scalar type, big-endian', () => {
    expect(decodeUbjson(bytes('Z'))).toBeNull();
    expect(decodeUbjson(bytes('T'))).toBe(true);
    expect(decodeUbjson(bytes('F'))).toBe(false);
    expect(decodeUbjson(bytes('i', 0xff))).toBe(-1);
    expect(decodeUbjson(bytes('U', 0xff))).toBe(255);
    expect(decodeUbjson(bytes('I', ...be(2, (v) => v.setInt16(0, -300))))).toBe(-300);
    expect(decodeUbjson(bytes('l', ...be(4, (v) => v.setInt32(0, 70000))))).toBe(70000);
    expect(decodeUbjson(bytes('L', ...be(8, (v) => v.setBigInt64(0, -(2n ** 40n)))))).toBe(-(2 ** 40));
    expect(decodeUbjson(bytes('d', ...be(4, (v) => v.setFloat32(0, 0.1))))).toBe(Math.fround(0.1));
    expect(decodeUbjson(bytes('D', ...be(8, (v) => v.setFloat64(0, 0.1))))).toBe(0.1);
    expect(decodeUbjson(bytes('C', 'x'))).toBe('x');
    expect(decodeUbjson(bytes('S', 'U', 3, 'abc'))).toBe('abc');
    expect(decodeUbjson(bytes('H', 'i', 4, '1e-3'))).toBe(0.001);
  });

  it('decodes plain and optimized containers, skipping no-op markers', () => {
    expect(decodeUbjson(bytes('[', 'U', 1, 'N', 'S', 'U', 1, 'a', ']'))).toEqual([1, 'a']);
    expect(decodeUbjson(bytes('[', '#', 'U', 2, 'T', 'F'))).toEqual([true, false]);
    expect(decodeUbjson(bytes('[', '$', 'U', '#', 'i', 3, 1, 2, 3))).toEqual([1, 2, 3]);
    expect(decodeUbjson(bytes('{', 'U', 1, 'a', 'U', 1, 'N', 'U', 1, 'b', 'T', '}'))).toEqual({
      a: 1,
      b: true,
    });
    expect(decodeUbjson(bytes('{', '$', 'i', '#', 'U', 2, 'U', 1, 'a', 5, 'U', 1, 'b', 6))).toEqual({
      a: 5,
      b: 6,
    });
    expect(decodeUbjson(bytes('[', '$', 'Z', '#', 'U', 2))).toEqual([null, null]);
  });

  it('keeps a "__proto__" key as data', () => {
    const value = decodeUbjson(bytes('{', 'U', 9, '__proto__', 'T', '}')) as Record<string, unknown>;
    expect(Object.keys(value)).toEqual(['__proto__']);
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
  });

  it.each([
    ['an unknown marker', bytes('X'), /unknown type marker 'X'/],
    ['a truncated number', bytes('l', 0, 0), /at byte 1: needs 4 more bytes/],
    ['an unclosed array', bytes('[', 'T'), /the input ends/],
    ['an unclosed object', bytes('{', 'U', 1, 'a', 'T'), /no closing '}'/],
    ['a count beyond the input', bytes('[', '$', 'U', '#', 'U', 200, 1), /count 200 exceeds/],
    ['a negative length', bytes('S', 'i', 0xff), /invalid length -1/],
    ['a type without a count', bytes('[', '$', 'U', 'U', 1), /'\$' type must be followed by a '#' count/],
    ['trailing bytes', bytes('T', 'T'), /1 trailing bytes/],
    ['an invalid high-precision number', bytes('H', 'U', 2, 'zz'), /'zz' is not a number/],
  ])('refuses %s', (_, input, message) => {
    expect(() => decodeUbjson(input)).toThrow(UbjsonError);
    expect(() => decodeUbjson(input)).toThrow(message);
  });
});
