CREATE TABLE `deployment_events` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`deployment_id` text NOT NULL,
	`at` integer NOT NULL,
	`status` text NOT NULL,
	`message` text NOT NULL,
	FOREIGN KEY (`deployment_id`) REFERENCES `deployments`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `deployment_events_deployment` ON `deployment_events` (`deployment_id`,`id`);--> statement-breakpoint
CREATE TABLE `deployments` (
	`id` text PRIMARY KEY NOT NULL,
	`trigger_id` text,
	`service` text NOT NULL,
	`service_id` text NOT NULL,
	`image` text NOT NULL,
	`image_key` text NOT NULL,
	`digest_hint` text,
	`digest` text,
	`pinned_image` text,
	`previous_image` text,
	`trigger` text NOT NULL,
	`status` text NOT NULL,
	`message` text,
	`failure_kind` text,
	`requested_by` text NOT NULL,
	`created_at` integer NOT NULL,
	`started_at` integer,
	`update_sent_at` integer,
	`finished_at` integer,
	FOREIGN KEY (`trigger_id`) REFERENCES `triggers`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `deployments_service_id` ON `deployments` (`service`,`id`);--> statement-breakpoint
CREATE INDEX `deployments_status_id` ON `deployments` (`status`,`id`);--> statement-breakpoint
CREATE INDEX `deployments_trigger_id` ON `deployments` (`trigger`,`id`);--> statement-breakpoint
CREATE INDEX `deployments_trigger_ref` ON `deployments` (`trigger_id`);--> statement-breakpoint
CREATE TABLE `quarantined_digests` (
	`service` text NOT NULL,
	`digest` text NOT NULL,
	`deployment_id` text NOT NULL,
	`reason` text NOT NULL,
	`created_at` integer NOT NULL,
	PRIMARY KEY(`service`, `digest`),
	FOREIGN KEY (`deployment_id`) REFERENCES `deployments`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE TABLE `triggers` (
	`id` text PRIMARY KEY NOT NULL,
	`kind` text NOT NULL,
	`event_key` text NOT NULL,
	`image_key` text NOT NULL,
	`digest_hint` text,
	`requested_by` text NOT NULL,
	`callback_url` text,
	`callback_state` text,
	`received_at` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `triggers_kind_event_key` ON `triggers` (`kind`,`event_key`);