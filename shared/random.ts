/**
 * A small seeded PRNG (sfc32, seeded through splitmix32) with the distributions Keel needs. Same seed,
 * same sequence, on every platform: data generation, splits and sampling never touch Math.random.
 */
export class Random {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  private spareNormal: number | undefined;

  constructor(seed: number) {
    if (!Number.isSafeInteger(seed)) throw new RangeError(`seed must be a safe integer, got ${seed}`);
    let state = (seed ^ Math.floor(seed / 2 ** 32)) >>> 0;
    const splitmix = (): number => {
      state = (state + 0x9e3779b9) >>> 0;
      let z = state;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = splitmix();
    this.b = splitmix();
    this.c = splitmix();
    this.d = splitmix();
    for (let i = 0; i < 12; i++) this.nextUint32();
  }

  nextUint32(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
    this.c = (this.c + t) >>> 0;
    return t;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  float(): number {
    return ((this.nextUint32() >>> 5) * 67108864 + (this.nextUint32() >>> 6)) / 9007199254740992;
  }

  /** Uniform integer in [min, max], both inclusive. */
  int(min: number, max: number): number {
    return min + Math.floor(this.float() * (max - min + 1));
  }

  /** Normal by the Box-Muller transform (the second value of each pair is kept for the next call). */
  normal(mean = 0, sd = 1): number {
    if (this.spareNormal !== undefined) {
      const z = this.spareNormal;
      this.spareNormal = undefined;
      return mean + sd * z;
    }
    const u = 1 - this.float();
    const v = this.float();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spareNormal = r * Math.sin(2 * Math.PI * v);
    return mean + sd * r * Math.cos(2 * Math.PI * v);
  }

  exponential(mean: number): number {
    return -mean * Math.log(1 - this.float());
  }

  /** Poisson by Knuth's product method, in pieces of mean ≤ 30 so exp(-mean) never underflows. */
  poisson(mean: number): number {
    if (!(mean >= 0) || !Number.isFinite(mean)) throw new RangeError(`poisson mean must be ≥ 0, got ${mean}`);
    let total = 0;
    let remaining = mean;
    while (remaining > 0) {
      const piece = Math.min(remaining, 30);
      remaining -= piece;
      const limit = Math.exp(-piece);
      let product = this.float();
      while (product > limit) {
        total++;
        product *= this.float();
      }
    }
    return total;
  }

  /** Index drawn with the given probabilities (they must sum to 1). */
  choice(probabilities: readonly number[]): number {
    let u = this.float();
    for (let i = 0; i < probabilities.length - 1; i++) {
      u -= probabilities[i]!;
      if (u < 0) return i;
    }
    return probabilities.length - 1;
  }
}
