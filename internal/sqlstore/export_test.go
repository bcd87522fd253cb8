package sqlstore

// DiscardEvents makes s write no events, for the benchmark of the
// outbox's cost.
func DiscardEvents(s *Store, v bool) { s.discardingEvents(v) }

// EventStmtPrepared reports whether the insert of n events is prepared.
func EventStmtPrepared(s *Store, n int) bool { return s.eventStmt(n) != nil }
