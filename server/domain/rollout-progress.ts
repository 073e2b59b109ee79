/**
 * The timeline entry a rollout writes each time its count of tasks on the new
 * image changes ("2/3 tasks running the new image"), written and read in one
 * place: the event stream hands it to clients as numbers (a progress bar).
 */
export interface RolloutProgress {
  running: number;
  desired: number;
}

export function formatProgress(p: RolloutProgress): string {
  return `${p.running}/${p.desired} tasks running the new image`;
}

const PROGRESS = /^(?:rollout completed: )?(\d+)\/(\d+) tasks running the new image$/;

/** The counts of a progress entry (or of the success entry that repeats the last one); null for any other message. */
export function parseProgress(message: string): RolloutProgress | null {
  const m = PROGRESS.exec(message);
  return m ? { running: Number(m[1]), desired: Number(m[2]) } : null;
}
