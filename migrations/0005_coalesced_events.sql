CREATE TABLE `coalesced_events` (
	`trigger_id` text NOT NULL,
	`deployment_id` text NOT NULL,
	`at` integer NOT NULL,
	PRIMARY KEY(`trigger_id`, `deployment_id`),
	FOREIGN KEY (`trigger_id`) REFERENCES `triggers`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`deployment_id`) REFERENCES `deployments`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `coalesced_events_deployment` ON `coalesced_events` (`deployment_id`,`at`);