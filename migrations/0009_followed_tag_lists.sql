CREATE TABLE `followed_tag_lists` (
	`list_key` text PRIMARY KEY NOT NULL,
	`tags` text NOT NULL,
	`seen_at` integer NOT NULL
);
