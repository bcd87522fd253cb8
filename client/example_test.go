package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/client"
)

// exampleService starts an in-process user service with one user who has
// the preferences and push tokens given, and returns it and the user's id.
func exampleService(email, name string, prefs usersvc.Preferences, pushTokens ...string) (*testServer, string) {
	srv, err := startServer(nil)
	if err != nil {
		log.Fatal(err)
	}
	id, err := srv.addUser(context.Background(), email, name, prefs, pushTokens...)
	if err != nil {
		log.Fatal(err)
	}
	return srv, id
}

// A notification worker sends an email only when the user wants email.
func Example_emailNotification() {
	srv, userID := exampleService("grace@example.com", "Grace Hopper", usersvc.Preferences{Email: true, Push: false})
	defer srv.Close()

	ctx := context.Background()
	users, err := client.New(srv.URL, client.WithServiceKey(serviceKey))
	if err != nil {
		log.Fatal(err)
	}

	prefs, err := users.Preferences(ctx, userID)
	if err != nil {
		log.Fatal(err)
	}
	if !prefs.Email {
		fmt.Println("the user wants no email")
		return
	}
	u, err := users.User(ctx, userID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("send the email to %s <%s>\n", u.Name, u.Email)
	// Output: send the email to Grace Hopper <grace@example.com>
}

// A notification worker sends a push notification to every device of the
// user, only when the user wants push.
func Example_pushNotification() {
	srv, userID := exampleService("ada@example.com", "Ada Lovelace", usersvc.Preferences{Email: false, Push: true},
		"fcm:ada-phone-token", "apns:ada-tablet-token")
	defer srv.Close()

	ctx := context.Background()
	users, err := client.New(srv.URL, client.WithServiceKey(serviceKey))
	if err != nil {
		log.Fatal(err)
	}

	prefs, err := users.Preferences(ctx, userID)
	if err != nil {
		log.Fatal(err)
	}
	if !prefs.Push {
		fmt.Println("the user wants no push notifications")
		return
	}
	devices, err := users.Devices(ctx, userID) // the most recently seen first
	if err != nil {
		log.Fatal(err)
	}
	for _, d := range devices {
		fmt.Printf("push to the %s device %s\n", d.DeviceType, d.PushToken)
	}
	// Output:
	// push to the ios device apns:ada-tablet-token
	// push to the android device fcm:ada-phone-token
}

// Errors are told apart with errors.Is, and a validation failure's
// messages per field read with errors.As.
func Example_errors() {
	srv, userID := exampleService("alan@example.com", "Alan Turing", usersvc.DefaultPreferences())
	defer srv.Close()
	ctx := context.Background()

	users, err := client.New(srv.URL, client.WithServiceKey(serviceKey))
	if err != nil {
		log.Fatal(err)
	}
	_, err = users.User(ctx, "0190b7a4-5a4f-7c2e-9d3b-2f1e4a5b6c7d")
	fmt.Println("unknown user:", errors.Is(err, client.ErrNotFound))
	_, err = users.UpdatePreferences(ctx, userID, usersvc.PreferencesPatch{Email: new(bool)})
	fmt.Println("a service changing preferences:", errors.Is(err, client.ErrForbidden))

	_, err = users.Register(ctx, usersvc.Registration{Email: "alan@", Password: "turing", Name: "Alan Turing"})
	var e *client.Error
	if errors.As(err, &e) {
		fmt.Println(e.Status, e.Fields["email"], len(e.Fields["password"]), "password rules broken")
	}
	// Output:
	// unknown user: true
	// a service changing preferences: true
	// 400 [Invalid email format] 4 password rules broken
}

// A client for a notification worker: it authenticates with its service
// key, retries reads a little harder than the default, stops calling a user
// service that is down, and keeps preferences for half a minute.
func ExampleNew() {
	users, err := client.New("http://usersvc:8000",
		client.WithServiceKey("notifier-key-0123456789abcdef"),
		client.WithTimeout(2*time.Second),
		client.WithRetry(client.RetryPolicy{Attempts: 4, BaseDelay: 50 * time.Millisecond, MaxDelay: time.Second}),
		client.WithCircuitBreaker(5, 10*time.Second),
		client.WithPreferencesCache(30*time.Second),
	)
	if err != nil {
		log.Fatal(err)
	}
	ctx := client.WithRequestID(context.Background(), "job-7f3a")
	prefs, err := users.Preferences(ctx, "0190b7a4-5a4f-7c2e-9d3b-2f1e4a5b6c7d")
	switch {
	case errors.Is(err, client.ErrUnavailable):
		// The user service is down or the circuit is open: try later.
	case err != nil:
		log.Print(err)
	default:
		fmt.Println(prefs.Email, prefs.Push)
	}
}

// A consumer follows the change feed from the cursor it stored, decodes
// each event's data by its type, and stores the event's position once the
// event is handled.
func ExampleClient_Events() {
	srv, userID := exampleService("grace@example.com", "Grace Hopper", usersvc.Preferences{Email: true, Push: true}, "fcm:grace-phone")
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	users, err := client.New(srv.URL, client.WithServiceKey(serviceKey)) // a key with the events.read scope
	if err != nil {
		log.Fatal(err)
	}

	var cursor int64 // stored by the consumer; 0 the first time
	for ev, err := range users.Events(ctx, cursor, client.FeedWait(time.Second)) {
		var gone *client.CursorTooOldError
		switch {
		case errors.As(err, &gone):
			log.Fatalf("resynchronise from the batch endpoint, then follow from %d", gone.Newest)
		case errors.Is(err, client.ErrUnavailable):
			continue // Events tries again by itself
		case err != nil:
			log.Fatal(err)
		}
		switch ev.Type {
		case usersvc.EventUserRegistered:
			u, err := client.DecodeData[usersvc.UserEventData](ev)
			if err != nil {
				log.Fatal(err)
			}
			fmt.Println("registered:", u.Name, u.Email, u.ID == userID)
		case usersvc.EventDeviceRegistered:
			d, err := client.DecodeData[usersvc.DeviceEventData](ev)
			if err != nil {
				log.Fatal(err)
			}
			fmt.Println("device:", d.PushToken, d.DeviceType)
		}
		cursor = ev.Position // store it with the change the event made
		if ev.Type == usersvc.EventDeviceRegistered {
			break
		}
	}
	fmt.Println("cursor stored:", cursor > 0)
	// Output:
	// registered: Grace Hopper grace@example.com true
	// device: fcm:grace-phone android
	// cursor stored: true
}

// A notification worker asks, for its recipients and the category of its
// message, which channels to use now and where to send, in one call.
func ExampleClient_Resolve() {
	srv, grace := exampleService("grace@example.com", "Grace Hopper", usersvc.Preferences{Email: true, Push: false}, "fcm:grace-phone")
	defer srv.Close()
	ada, err := srv.addUser(context.Background(), "ada@example.com", "Ada Lovelace", usersvc.Preferences{Email: false, Push: true}, "fcm:ada-phone")
	if err != nil {
		log.Fatal(err)
	}

	ctx := context.Background()
	users, err := client.New(srv.URL, client.WithServiceKey(serviceKey))
	if err != nil {
		log.Fatal(err)
	}
	res, err := users.Resolve(ctx, client.ResolveRequest{
		Channels: []string{usersvc.ChannelEmail, usersvc.ChannelPush},
		UserIDs:  []string{grace, ada}, // any number: more than 1000 go in batches
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, d := range res.Recipients {
		for _, c := range d.Channels {
			switch {
			case !c.Send:
				fmt.Printf("%s: not now (%s)\n", c.Channel, c.Reason)
			case c.Email != nil:
				fmt.Printf("email to %s\n", *c.Email)
			default:
				for _, dev := range c.Devices {
					fmt.Printf("push to %s\n", dev.Token)
				}
			}
		}
	}
	// Output:
	// email to grace@example.com
	// push: not now (channel_off)
	// email: not now (channel_off)
	// push to fcm:ada-phone
}
