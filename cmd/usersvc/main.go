// Command usersvc runs the user service: it registers users, logs them in
// with JWT access and refresh tokens, and keeps their notification
// preferences and push devices.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	setMemoryLimit()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "usersvc:", err)
		var u usageError
		if errors.As(err, &u) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// usageError is a command line the program does not understand.
type usageError string

func (e usageError) Error() string { return string(e) }

const usage = `usage: usersvc [command]

commands:
  serve                               apply migrations, then serve HTTP (the default)
  migrate                             apply pending migrations and exit
  create-admin --email E --name N     create an admin; the password is read from standard input
  healthcheck                         exit 0 when the local readiness check answers 200
  import-django --from URL [--dry-run]
                                      copy the users of the Django service into the database
  version                             print the version

Configuration is read from the environment; see the README.`

// run is the whole program: main only supplies the process's environment.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "usersvc", version())
		return nil
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, usage)
		return nil
	}
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	switch cmd {
	case "serve":
		if len(args) > 0 {
			return usageError("serve takes no arguments\n" + usage)
		}
		return serve(ctx, cfg, stderr)
	case "migrate":
		return migrate(ctx, cfg, stdout, stderr)
	case "create-admin":
		return createAdmin(ctx, cfg, args, stdin, stdout, stderr)
	case "healthcheck":
		return healthcheck(ctx, cfg)
	case "import-django":
		return importDjango(ctx, cfg, args, getenv, stdout, stderr)
	}
	return usageError(fmt.Sprintf("unknown command %q\n%s", cmd, usage))
}
