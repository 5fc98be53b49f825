// Randomness enters the core only through this interface, so a simulation seed replays exactly.

export interface Rng {
  /** A uniformly distributed integer in [0, n). */
  intn(n: number): number;
}

/**
 * A small, fast, seeded PRNG (Mulberry32 with a SplitMix32 seed scramble). Not cryptographic:
 * it only spreads election timeouts and drives the simulator.
 */
export class SeededRng implements Rng {
  private state: number;

  constructor(seed: number) {
    // Scramble so that nearby seeds give unrelated sequences.
    let z = (seed >>> 0) + 0x9e3779b9;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    this.state = (z ^ (z >>> 16)) >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  intn(n: number): number {
    if (!(Number.isSafeInteger(n) && n > 0)) throw new TypeError(`intn: n must be a positive integer, got ${n}`);
    return Math.floor(this.next() * n);
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new TypeError('pick: empty list');
    return items[this.intn(items.length)] as T;
  }
}
