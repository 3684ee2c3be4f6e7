import { describe, expect, it } from 'vitest';
import { intEnv, numberEnv, optionalEnv, requireEnv } from '#shared/env.ts';
import { ConfigError } from '#shared/errors.ts';

describe('environment getters', () => {
  it('requireEnv names the missing variable', () => {
    expect(() => requireEnv('KEEL_X', {})).toThrow(new ConfigError('environment variable KEEL_X is not set'));
    expect(requireEnv('KEEL_X', { KEEL_X: 'a' })).toBe('a');
  });

  it('optionalEnv treats an empty value as unset', () => {
    expect(optionalEnv('KEEL_X', 'd', { KEEL_X: '' })).toBe('d');
    expect(optionalEnv('KEEL_X', 'd', { KEEL_X: 'v' })).toBe('v');
  });

  it('intEnv: the fallback when unset, integers within bounds, else an error naming the variable and value', () => {
    expect(intEnv('KEEL_N', 7, {}, {})).toBe(7);
    expect(intEnv('KEEL_N', 7, { min: 0, max: 10 }, { KEEL_N: '10' })).toBe(10);
    expect(() => intEnv('KEEL_N', 7, { min: 0, max: 10 }, { KEEL_N: '11' })).toThrow(
      'environment variable KEEL_N must be an integer from 0 to 10, got "11"',
    );
    expect(() => intEnv('KEEL_N', 7, { min: 0, max: 10 }, { KEEL_N: '2.5' })).toThrow(ConfigError);
  });

  it('numberEnv: undefined when unset, finite numbers within bounds', () => {
    expect(numberEnv('KEEL_F', {}, {})).toBeUndefined();
    expect(numberEnv('KEEL_F', { min: 0, max: 1 }, { KEEL_F: '0.25' })).toBe(0.25);
    expect(() => numberEnv('KEEL_F', { min: 0, max: 1 }, { KEEL_F: '1.5' })).toThrow(
      'environment variable KEEL_F must be a number from 0 to 1, got "1.5"',
    );
    expect(() => numberEnv('KEEL_F', {}, { KEEL_F: 'NaN' })).toThrow(ConfigError);
  });
});
