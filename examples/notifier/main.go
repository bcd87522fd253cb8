// Command notifier is a small notification worker built on the user
// service's Go client. For each notification it asks the user service, in
// one call (Resolve), who of its recipients gets it now, on which of its
// channels and at which addresses, or why not (a channel turned off, the
// category declined, quiet hours, no address, a disabled account), and
// prints what it would send: an email to the user's address, an SMS to
// their phone, a push notification to each of their devices, an in-app
// message. It keeps its own copy (a replica) of the users' names, which the
// decision does not carry: filled once from the batch endpoint, then, with
// -follow, kept up to date from the user service's change events (the HTTP
// change feed, or RabbitMQ), whose changes it tells.
//
// Usage:
//
//	notifier [-subject S] [-category C] [-channels L] USER_ID...   notify each user once, and exit
//	notifier -follow feed [-state FILE] USER_ID...                 follow the HTTP change feed
//	notifier -follow amqp://… [-state FILE] USER_ID...             follow the events in RabbitMQ
//
// With -follow, each line of standard input is a notification to send,
// "USER_ID [TEXT]"; the changes of the users served are told on standard
// error. USERSVC_URL and USERSVC_SERVICE_KEY name the user service and the
// worker's service key.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/client"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
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

// run is the whole command: it reads its flags and the environment, fills
// the replica of the users named on the command line, then notifies each
// once, or follows the change events and sends the notifications read
// from stdin.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("notifier", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: notifier [flags] USER_ID...")
		fs.PrintDefaults()
	}
	baseURL := orDefault(getenv("USERSVC_URL"), "http://localhost:8000")
	fs.StringVar(&baseURL, "url", baseURL, "base URL of the user service (env USERSVC_URL)")
	serviceKey := fs.String("service-key", getenv("USERSVC_SERVICE_KEY"), "service API key (env USERSVC_SERVICE_KEY)")
	subject := fs.String("subject", "You have a new message", "what the notification says")
	follow := fs.String("follow", getenv("NOTIFIER_FOLLOW"), "keep the replica up to date from the change events: \"feed\" (the HTTP change feed) or an amqp:// URL (RabbitMQ); then read notifications from stdin (env NOTIFIER_FOLLOW)")
	state := fs.String("state", getenv("NOTIFIER_STATE"), "file that keeps the replica and its cursor across restarts (env NOTIFIER_STATE)")
	exchange := fs.String("exchange", orDefault(getenv("EVENTS_EXCHANGE"), "usersvc.events"), "RabbitMQ exchange of the user service's events (env EVENTS_EXCHANGE)")
	queue := fs.String("queue", orDefault(getenv("NOTIFIER_QUEUE"), "usersvc-notifier"), "RabbitMQ queue of this worker, durable (env NOTIFIER_QUEUE)")
	wait := fs.Duration("wait", client.DefaultFeedWait, "how long one poll of the change feed may wait for an event")
	category := fs.String("category", getenv("NOTIFIER_CATEGORY"), "the category of the notifications, as the user service defines it; empty: none (env NOTIFIER_CATEGORY)")
	channels := fs.String("channels", orDefault(getenv("NOTIFIER_CHANNELS"), "email,push"), "the channels the notifications may use, comma-separated: email, push, sms, in_app (env NOTIFIER_CHANNELS)")
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
	w := &worker{users: users, r: newReplica(fs.Args()), state: *state, log: stderr, category: *category}
	for ch := range strings.SplitSeq(*channels, ",") {
		if ch = strings.TrimSpace(ch); ch == "" {
			continue
		}
		if !usersvc.ValidChannel(ch) {
			fmt.Fprintf(stderr, "notifier: -channels: %q is not a channel: use email, push, sms, in_app\n", ch)
			return errUsage
		}
		w.channels = append(w.channels, ch)
	}
	if len(w.channels) == 0 {
		fmt.Fprintln(stderr, "notifier: -channels names no channel")
		return errUsage
	}
	switch {
	case *follow == "":
		if err := w.r.fill(ctx, users, 0); err != nil {
			return err
		}
		return w.notify(ctx, stdout, fs.Args(), *subject)
	case *follow == "feed":
		return serve(ctx, w.followFeed(*wait), w, stdin, stdout, *subject)
	case strings.HasPrefix(*follow, "amqp://") || strings.HasPrefix(*follow, "amqps://"):
		return serve(ctx, w.followAMQP(*follow, *exchange, *queue), w, stdin, stdout, *subject)
	default:
		fmt.Fprintf(stderr, "notifier: -follow must be \"feed\" or an amqp:// URL, not %q\n", *follow)
		return errUsage
	}
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// serve runs the follower and, once the replica is filled, sends a
// notification for each line of stdin ("USER_ID [TEXT]"), until stdin ends
// (nil), ctx ends (nil) or the follower fails. A notification the user
// service cannot decide on now is told on the worker's log and skipped.
func serve(ctx context.Context, f follower, w *worker, stdin io.Reader, stdout io.Writer, subject string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	readyc, done := make(chan struct{}), make(chan error, 1)
	go func() { done <- f(ctx, func() { close(readyc) }) }()
	select {
	case <-readyc:
	case err := <-done:
		return err
	case <-ctx.Done():
		return <-done
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdin)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
	}()
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				cancel()
				return stopped(<-done)
			}
			id, text, _ := strings.Cut(strings.TrimSpace(line), " ")
			if id == "" {
				continue
			}
			if text = strings.TrimSpace(text); text == "" {
				text = subject
			}
			if err := w.notify(ctx, stdout, []string{id}, text); err != nil {
				fmt.Fprintf(w.log, "notification of %s: %v\n", id, err)
			}
		case err := <-done:
			return err
		case <-ctx.Done():
			return stopped(<-done)
		}
	}
}

// stopped is the follower's outcome once it was told to stop.
func stopped(err error) error {
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
