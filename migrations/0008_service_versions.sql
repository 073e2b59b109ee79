CREATE TABLE `service_versions` (
	`service_id` text PRIMARY KEY NOT NULL,
	`service` text NOT NULL,
	`version` integer NOT NULL,
	`image` text NOT NULL,
	`seen_at` integer NOT NULL
);
