-- The outbox of change events: each change writes its events in its own
-- transaction. position is the global order (and the consumers' cursor):
-- transactions take an advisory lock before they write events, so
-- positions commit in order. published_at is set once a broker confirmed
-- the event.
CREATE TABLE events (
    position     bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id           uuid        NOT NULL UNIQUE,
    type         text        NOT NULL,
    subject      text        NOT NULL,
    time         timestamptz NOT NULL,
    data         text        NOT NULL,
    published_at timestamptz
);

CREATE INDEX events_unpublished_idx ON events (position) WHERE published_at IS NULL;

-- Leases, such as the one that lets one replica relay the events at a time.
CREATE TABLE leases (
    name       text        PRIMARY KEY,
    holder     text        NOT NULL,
    expires_at timestamptz NOT NULL
);
