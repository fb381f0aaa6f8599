-- Metadata retention (src/retention.ts): each purge walks an index from its oldest row and stops after one batch.

-- Message rows whose every copy is gone, oldest first (the purge also checks the last status change).
CREATE INDEX IF NOT EXISTS messages_created_at_idx ON messages(created_at);

-- Claimed key packages (spent: kept only while the claimer's commit may still name them) and unclaimed ones past
-- their lifetime (never handed out again). Last-resort packages are replaced by their device, not purged.
CREATE INDEX IF NOT EXISTS key_packages_claimed_at_idx ON key_packages(claimed_at) WHERE claimed_at IS NOT NULL AND NOT last_resort;
CREATE INDEX IF NOT EXISTS key_packages_not_after_idx ON key_packages(not_after) WHERE claimed_at IS NULL AND NOT last_resort;

-- Link tokens past their lifetime (spent ones are few: a used link is purged on the next run).
CREATE INDEX IF NOT EXISTS device_links_expires_at_idx ON device_links(expires_at);
