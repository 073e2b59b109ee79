/**
 * The notification texts of Shepherd (containrrr/shepherd, `shepherd`), so
 * that Apprise rules and chat filters written for it keep matching. The body
 * starts with what `$(date)` printed in the container's TZ.
 */
export type NotifyType = "success" | "failure" | "info" | "warning";

export interface AppriseMessage {
  title: string;
  body: string;
  notify_type: NotifyType;
}

/** `date`'s default output, `Tue Nov  7 04:02:12 EST 2023`, in `timeZone` (the process's zone when unset). */
export function shellDate(at: number, timeZone?: string): string {
  const parts = new Intl.DateTimeFormat("en-US", {
    timeZone,
    weekday: "short",
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    hourCycle: "h23",
    year: "numeric",
    timeZoneName: "short",
  }).formatToParts(new Date(at));
  const part = (type: Intl.DateTimeFormatPartTypes) => parts.find((p) => p.type === type)?.value ?? "";
  return `${part("weekday")} ${part("month")} ${part("day").padStart(2, " ")} ${part("hour")}:${part("minute")}:${part("second")} ${part("timeZoneName")} ${part("year")}`;
}

export function updatedMessage(o: { service: string; hostname: string; from: string; to: string; date: string }): AppriseMessage {
  return {
    title: `[Shepherd] Service ${o.service} updated on ${o.hostname}`,
    body: `${o.date} Service ${o.service} was updated from ${o.from} to ${o.to}`,
    notify_type: "success",
  };
}

/** Shepherd named the image the service ran after its rollback; we name the one that failed. */
export function failedMessage(o: { service: string; hostname: string; image: string; date: string }): AppriseMessage {
  return {
    title: `[Shepherd] Service ${o.service} update failed on ${o.hostname}`,
    body: `${o.date} Service ${o.service} failed to update to ${o.image}`,
    notify_type: "failure",
  };
}

/** Shepherd's notification for a `docker manifest inspect` that failed (the one title of its three without the host). */
export function imageUnavailableMessage(o: { service: string; image: string; date: string }): AppriseMessage {
  return {
    title: `[Shepherd] Error updating service ${o.service}`,
    body: `${o.date} Service ${o.service} Image ${o.image} does not exist or it is not available`,
    notify_type: "failure",
  };
}

/** Not Shepherd's (it had no policies), in the same shape: a deployment a policy holds for a person. */
export function waitingForApprovalMessage(o: {
  service: string;
  hostname: string;
  image: string;
  deploymentId: string;
  date: string;
}): AppriseMessage {
  return {
    title: `[deployer] Service ${o.service} waits for approval on ${o.hostname}`,
    body: `${o.date} Service ${o.service}: ${o.image} waits for approval (deployment ${o.deploymentId}); approve or reject it with deployments:write`,
    notify_type: "warning",
  };
}

/** deployer.mode=notify: what would have been deployed. */
export function wouldDeployMessage(o: { service: string; hostname: string; image: string; date: string }): AppriseMessage {
  return {
    title: `[deployer] Service ${o.service} has a new image on ${o.hostname}`,
    body: `${o.date} Service ${o.service} would be updated to ${o.image} (deployer.mode=notify: not deployed)`,
    notify_type: "info",
  };
}

/** Not Shepherd's (it had no such event): a service whose image someone else changed, in the same shape. */
export function driftMessage(o: { service: string; hostname: string; from: string; to: string; date: string }): AppriseMessage {
  return {
    title: `[Shepherd] Service ${o.service} changed outside the deployer on ${o.hostname}`,
    body: `${o.date} Service ${o.service} was changed from ${o.from} to ${o.to} by someone else; the deployer recorded it and left it`,
    notify_type: "warning",
  };
}
