DROP INDEX `triggers_unmatched_since`;--> statement-breakpoint
CREATE INDEX `triggers_unmatched_since` ON `triggers` (`unmatched_since`,`id`) WHERE "triggers"."unmatched_since" is not null;