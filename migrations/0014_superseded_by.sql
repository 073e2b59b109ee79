ALTER TABLE `deployments` ADD `superseded_by` text;--> statement-breakpoint
CREATE INDEX `deployments_superseded_by` ON `deployments` (`superseded_by`) WHERE "deployments"."superseded_by" is not null;