/**
 * Runs many small writes as few statements: calls that arrive while earlier batches are in flight wait and go
 * together as the next batch (at most `maxBatch` items), so under load each round trip and each commit carries many,
 * and alone a call goes at once (no timer, no added latency). The batch function answers item by item, in order.
 * If a batch fails, its items are run again one by one (`runOne`), so one bad item fails only its own caller and
 * every error keeps its own cause.
 */
export class Coalescer<I, O> {
  private waiting: { item: I; resolve: (o: O) => void; reject: (e: unknown) => void }[] = [];
  private inFlight = 0;

  constructor(
    private readonly runBatch: (items: I[]) => Promise<O[]>,
    private readonly runOne: (item: I) => Promise<O>,
    private readonly opts: { maxBatch: number; maxInFlight: number } = { maxBatch: 32, maxInFlight: 2 },
  ) {}

  run(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.waiting.push({ item, resolve, reject });
      this.next();
    });
  }

  private next(): void {
    if (this.inFlight >= this.opts.maxInFlight || this.waiting.length === 0) return;
    const batch = this.waiting.splice(0, this.opts.maxBatch);
    this.inFlight++;
    void this.send(batch).finally(() => {
      this.inFlight--;
      this.next();
    });
  }

  private async send(batch: typeof this.waiting): Promise<void> {
    if (batch.length === 1) {
      const [one] = batch;
      return this.runOne(one!.item).then(one!.resolve, one!.reject);
    }
    try {
      const out = await this.runBatch(batch.map((b) => b.item));
      batch.forEach((b, i) => b.resolve(out[i]!));
    } catch {
      await Promise.all(batch.map((b) => this.runOne(b.item).then(b.resolve, b.reject)));
    }
  }
}
