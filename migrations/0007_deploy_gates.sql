ALTER TABLE `deployments` ADD `wait_until` integer;--> statement-breakpoint
ALTER TABLE `deployments` ADD `approved_by` text;--> statement-breakpoint
ALTER TABLE `deployments` ADD `approved_at` integer;--> statement-breakpoint
CREATE INDEX `deployments_digest` ON `deployments` (`digest`,`created_at`);