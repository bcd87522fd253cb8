-- The outbox of change events: each change writes its events in its own
-- transaction. position is the global order (and the consumers' cursor): a
-- rowid, which only grows since the newest event is never pruned;
-- published_at is set once a broker confirmed the event.
CREATE TABLE events (
    position     INTEGER NOT NULL PRIMARY KEY,
    id           TEXT    NOT NULL UNIQUE,
    type         TEXT    NOT NULL,
    subject      TEXT    NOT NULL,
    time         INTEGER NOT NULL,
    data         TEXT    NOT NULL,
    published_at INTEGER
) STRICT;

CREATE INDEX events_unpublished_idx ON events (position) WHERE published_at IS NULL;

-- Leases, such as the one that lets one replica relay the events at a time.
CREATE TABLE leases (
    name       TEXT    NOT NULL PRIMARY KEY,
    holder     TEXT    NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;
