package sqlstore

// DiscardEvents makes s write no events, for the benchmark of the
// outbox's cost.
func DiscardEvents(s *Store, v bool) { s.discardingEvents(v) }
