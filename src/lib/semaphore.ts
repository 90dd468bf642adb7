/**
 * At most `size` holders at once; the others wait in arrival order. Used where a limited resource (sandbox
 * children) must be free before a budget starts counting: a job waiting here has not started its clock.
 */
export class Semaphore {
  private held = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(readonly size: number) {
    if (!(size >= 1)) throw new Error(`a semaphore needs at least one slot, not ${size}`);
  }

  async acquire(): Promise<() => void> {
    if (this.held < this.size) this.held++;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    let released = false;
    return () => {
      if (released) return;
      released = true;
      // The slot passes straight to the next waiter, so `held` stays the same.
      const next = this.waiting.shift();
      if (next) next();
      else this.held--;
    };
  }

  /** Runs `fn` holding a slot. */
  async with<T>(fn: () => Promise<T>): Promise<T> {
    const release = await this.acquire();
    try {
      return await fn();
    } finally {
      release();
    }
  }
}
