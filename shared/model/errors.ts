/** A training or metric parameter (or input) is out of range; `parameter` names it. */
export class InvalidParameterError extends RangeError {
  override readonly name = 'InvalidParameterError';

  constructor(
    readonly parameter: string,
    message: string,
  ) {
    super(message);
  }
}

export function requireInteger(parameter: string, value: number, min: number, max = Infinity): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    const range = max === Infinity ? `>= ${min}` : `in [${min}, ${max}]`;
    throw new InvalidParameterError(parameter, `${parameter} must be an integer ${range}, got ${value}`);
  }
}

/** `value` must lie in the interval described by `range`, e.g. '(0, 1]' or '[0, Infinity)'. */
export function requireInRange(
  parameter: string,
  value: number,
  min: number,
  max: number,
  range: { minOpen: boolean; maxOpen: boolean },
): void {
  const aboveMin = range.minOpen ? value > min : value >= min;
  const belowMax = range.maxOpen ? value < max : value <= max;
  if (!(aboveMin && belowMax)) {
    const interval = `${range.minOpen ? '(' : '['}${min}, ${max}${range.maxOpen ? ')' : ']'}`;
    throw new InvalidParameterError(parameter, `${parameter} must be in ${interval}, got ${value}`);
  }
}
