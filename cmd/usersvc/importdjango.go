package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/usersvc/usersvc/internal/djangoimport"
)

const importDjangoUsage = `usage: usersvc import-django [--from URL] [--dry-run]

Copies the users of the Django service (its users_user, users_pushtoken and
users_notificationpreferences tables) into the configured database. URL is
the Django PostgreSQL database (postgres://…); without --from it is read from
DJANGO_DATABASE_URL. Users already imported are left as they are, so running
it again is safe. With --dry-run nothing is written.`

// djangoConnectTimeout bounds connecting to the Django database when its
// URL does not say otherwise (connect_timeout).
const djangoConnectTimeout = 10 * time.Second

// importDjango copies the users of the Django predecessor into the
// configured store and prints the report to stdout. It fails only when the
// Django database cannot be read or the store cannot be used; rows that
// cannot be imported are listed in the report.
func importDjango(ctx context.Context, cfg *config, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("import-django", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	from := fs.String("from", "", "the Django database URL")
	dryRun := fs.Bool("dry-run", false, "report what would be imported, write nothing")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		return usageError(importDjangoUsage)
	}
	url := *from
	if url == "" {
		url = getenv("DJANGO_DATABASE_URL")
	}
	if url == "" {
		return usageError("import-django: name the Django database with --from or DJANGO_DATABASE_URL\n" + importDjangoUsage)
	}
	if cfg.postgres() && url == cfg.DatabaseURL {
		return usageError("import-django: the Django database is the service's own database (DATABASE_URL); import into a database of its own")
	}
	connCfg, err := pgx.ParseConfig(url)
	if err != nil {
		return usageError("import-django: the Django database URL is not valid: " + err.Error())
	}
	if connCfg.ConnectTimeout == 0 {
		connCfg.ConnectTimeout = djangoConnectTimeout
	}
	conn, err := pgx.ConnectConfig(ctx, connCfg)
	if err != nil {
		return fmt.Errorf("import-django: connect to the Django database: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))

	st, err := openStore(ctx, cfg, nil)
	if err != nil {
		return err
	}
	defer st.Close()

	fmt.Fprintf(stderr, "importing users from the Django database into %s\n", storeKind(cfg))
	report, err := djangoimport.Run(ctx, conn, st, djangoimport.Options{DryRun: *dryRun})
	if report != nil {
		if _, werr := report.WriteTo(stdout); werr != nil && err == nil {
			err = werr
		}
	}
	if err != nil {
		return fmt.Errorf("import-django: %w", err)
	}
	return nil
}

// storeKind names the configured store without its credentials.
func storeKind(cfg *config) string {
	if cfg.postgres() {
		return "PostgreSQL"
	}
	return "SQLite " + cfg.sqlitePath()
}
