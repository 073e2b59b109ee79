CREATE TABLE `service_holds` (
	`service` text PRIMARY KEY NOT NULL,
	`deployment_id` text NOT NULL,
	`reason` text NOT NULL,
	`held_by` text NOT NULL,
	`created_at` integer NOT NULL,
	FOREIGN KEY (`deployment_id`) REFERENCES `deployments`(`id`) ON UPDATE no action ON DELETE no action
);
