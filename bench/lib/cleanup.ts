/**
 * Everything a benchmark starts (child processes, services, registries,
 * images, temp dirs) registers its undo here; run.ts runs the stack in
 * reverse on success, failure and Ctrl-C alike.
 */
export class Cleanup {
  private readonly steps: Array<{ what: string; undo: () => Promise<unknown> | unknown }> = [];

  add(what: string, undo: () => Promise<unknown> | unknown): void {
    this.steps.push({ what, undo });
  }

  /** Runs and forgets every step registered since `mark`; failures are reported, never thrown. */
  async run(mark = 0): Promise<void> {
    while (this.steps.length > mark) {
      const step = this.steps.pop()!;
      try {
        await step.undo();
      } catch (err) {
        process.stderr.write(`cleanup: ${step.what} failed: ${(err as Error).message}\n`);
      }
    }
  }

  mark(): number {
    return this.steps.length;
  }
}
