-- The relay's progress through the outbox as a watermark instead of a mark
-- per event. Events commit in position order (the advisory lock of their
-- insert is held until commit) and the relay publishes and confirms them in
-- that order, so "published" is exactly "position at or below
-- published_through": one row changes per confirmed batch, and the insert
-- of an event no longer writes the partial index of unpublished events.
--
-- The watermark starts just before the oldest event not yet published, so
-- that nothing is skipped (an event marked published after an unpublished
-- one, which the relay never did, would be published again); with every
-- event published, at the newest one; with none kept, at 0.
CREATE TABLE event_progress (
    name       text        PRIMARY KEY,
    position   bigint      NOT NULL,
    updated_at timestamptz NOT NULL
);

INSERT INTO event_progress (name, position, updated_at)
SELECT 'published_through',
       COALESCE((SELECT min(position) - 1 FROM events WHERE published_at IS NULL),
                (SELECT max(position) FROM events),
                0),
       now();

DROP INDEX events_unpublished_idx;
ALTER TABLE events DROP COLUMN published_at;

-- The UNIQUE constraint on id goes too: ids are UUIDv7 that the service
-- generates, and nothing looks an event up by id. Its index was
-- measurable: the insert of one event wrote 3 WAL records (239 bytes) with
-- it and 2 (167 bytes) without (4 and 303 with the partial index as well);
-- on SQLite, where the same index costs a page per commit, the time of a
-- change with its event fell by a tenth of the change's own time.
ALTER TABLE events DROP CONSTRAINT events_id_key;
