// Command notifier is a small notification worker built on the user
// service's Go client. For each user id it is given, it asks the user
// service which channels the user wants, and prints what it would send:
// an email to the user's address when email is on, a push notification to
// each of the user's device tokens when push is on.
//
// Usage:
//
//	USERSVC_URL=http://localhost:8000 USERSVC_SERVICE_KEY=… notifier [-subject S] USER_ID...
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/usersvc/usersvc/client"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case errors.Is(err, errUsage):
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, "notifier:", err)
		os.Exit(1)
	}
}

// errUsage is returned for a command line that cannot be run; the reason
// has already been written out.
var errUsage = errors.New("usage")

// run is the whole command: it reads its flags and the environment, then
// notifies each user named on the command line.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("notifier", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: notifier [flags] USER_ID...")
		fs.PrintDefaults()
	}
	baseURL := getenv("USERSVC_URL")
	if baseURL == "" {
		baseURL = "http://localhost:8000"
	}
	fs.StringVar(&baseURL, "url", baseURL, "base URL of the user service (env USERSVC_URL)")
	serviceKey := fs.String("service-key", getenv("USERSVC_SERVICE_KEY"), "service API key (env USERSVC_SERVICE_KEY)")
	subject := fs.String("subject", "You have a new message", "what the notification says")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "notifier: at least one user id is needed")
		fs.Usage()
		return errUsage
	}
	if *serviceKey == "" {
		fmt.Fprintln(stderr, "notifier: a service key is needed: set USERSVC_SERVICE_KEY or -service-key")
		return errUsage
	}
	users, err := client.New(baseURL, client.WithServiceKey(*serviceKey), client.WithUserAgent("usersvc-example-notifier"))
	if err != nil {
		return err
	}
	return notify(ctx, users, fs.Args(), *subject, stdout)
}

// notify asks the user service what each user wants and writes to out what
// would be sent. A user who does not exist is reported and skipped; any
// other failure (the user service is down, the key is refused) stops it,
// so that a job runner can try again later.
func notify(ctx context.Context, users *client.Client, userIDs []string, subject string, out io.Writer) error {
	for _, id := range userIDs {
		fmt.Fprintf(out, "user %s\n", id)
		prefs, err := users.Preferences(ctx, id)
		if errors.Is(err, client.ErrNotFound) || errors.Is(err, client.ErrInvalid) {
			fmt.Fprintln(out, "  no such user: nothing sent")
			continue
		}
		if err != nil {
			return fmt.Errorf("user %s: %w", id, err)
		}
		if prefs.Email {
			u, err := users.User(ctx, id)
			if err != nil {
				return fmt.Errorf("user %s: %w", id, err)
			}
			fmt.Fprintf(out, "  email to %s <%s>: %s\n", u.Name, u.Email, subject)
		} else {
			fmt.Fprintln(out, "  email: off")
		}
		if !prefs.Push {
			fmt.Fprintln(out, "  push: off")
			continue
		}
		devices, err := users.Devices(ctx, id)
		if err != nil {
			return fmt.Errorf("user %s: %w", id, err)
		}
		if len(devices) == 0 {
			fmt.Fprintln(out, "  push: on, but no device is registered")
		}
		for _, d := range devices {
			fmt.Fprintf(out, "  push to %s (%s): %s\n", d.PushToken, d.DeviceType, subject)
		}
	}
	return nil
}
