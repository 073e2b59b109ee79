ALTER TABLE `sources` ADD `issuer` text;--> statement-breakpoint
ALTER TABLE `sources` ADD `jwks_url` text;--> statement-breakpoint
ALTER TABLE `sources` ADD `audience` text;--> statement-breakpoint
ALTER TABLE `sources` ADD `email` text;--> statement-breakpoint
ALTER TABLE `sources` ADD `claims` text;