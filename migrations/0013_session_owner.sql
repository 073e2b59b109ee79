ALTER TABLE `dashboard_sessions` ADD `owner` text;--> statement-breakpoint
CREATE INDEX `dashboard_sessions_owner` ON `dashboard_sessions` (`owner`,`created_at`);