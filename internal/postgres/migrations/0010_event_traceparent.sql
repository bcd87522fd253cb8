-- The W3C trace context (traceparent) of the request that wrote the event,
-- when it was traced: the CloudEvents distributed tracing extension. NULL
-- for events written untraced, and for those written before this column.
-- Nullable without a default: added without rewriting the table.
ALTER TABLE events ADD COLUMN traceparent text;
