CREATE TABLE `sources` (
	`id` text PRIMARY KEY NOT NULL,
	`kind` text NOT NULL,
	`repos` text NOT NULL,
	`services` text,
	`header_name` text,
	`secret` text,
	`previous_secret` text,
	`previous_until` integer,
	`created_at` integer NOT NULL,
	`rotated_at` integer,
	`revoked_at` integer
);
