ALTER TABLE `triggers` ADD `unmatched_since` integer;--> statement-breakpoint
ALTER TABLE `triggers` ADD `allowed_services` text;--> statement-breakpoint
CREATE INDEX `triggers_unmatched_since` ON `triggers` (`unmatched_since`);