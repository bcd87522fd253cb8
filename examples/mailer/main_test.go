package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"mime/quotedprintable"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usersvc/usersvc"
)

// sink is a local SMTP server that keeps what it is sent: enough of the
// protocol (RFC 5321) for one client, without TLS or authentication.
type sink struct {
	ln   net.Listener
	mu   sync.Mutex
	mail []sunk
}

type sunk struct {
	from string
	// data is the message as sent, its quoted-printable undone.
	data string
	to   []string
}

func startSink(t *testing.T) *sink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &sink{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	return s
}

func (s *sink) serve(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	reply := func(line string) { _, _ = c.Write([]byte(line + "\r\n")) }
	reply("220 sink ESMTP")
	var m sunk
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		verb := strings.ToUpper(strings.SplitN(line, " ", 2)[0])
		switch {
		case verb == "EHLO":
			reply("250-sink")
			reply("250 8BITMIME")
		case strings.HasPrefix(strings.ToUpper(line), "MAIL FROM:"):
			m = sunk{from: address(line[len("MAIL FROM:"):])}
			reply("250 OK")
		case strings.HasPrefix(strings.ToUpper(line), "RCPT TO:"):
			m.to = append(m.to, address(line[len("RCPT TO:"):]))
			reply("250 OK")
		case verb == "DATA":
			reply("354 go on")
			var b strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				b.WriteString(l)
			}
			body, err := io.ReadAll(quotedprintable.NewReader(strings.NewReader(b.String())))
			if err != nil {
				body = []byte(b.String())
			}
			m.data = string(body)
			s.mu.Lock()
			s.mail = append(s.mail, m)
			s.mu.Unlock()
			reply("250 queued")
		case verb == "QUIT":
			reply("221 bye")
			return
		default: // HELO, RSET, NOOP
			reply("250 OK")
		}
	}
}

// address is the path of a MAIL FROM or RCPT TO argument, without its
// angle brackets and parameters (BODY=8BITMIME…).
func address(arg string) string {
	arg = strings.TrimSpace(arg)
	if i := strings.IndexByte(arg, '>'); strings.HasPrefix(arg, "<") && i > 0 {
		return arg[1:i]
	}
	return strings.Fields(arg)[0]
}

func (s *sink) received() []sunk {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sunk(nil), s.mail...)
}

// event is an event as the feed gives it, with data d.
func event(t *testing.T, pos int64, typ string, d any) usersvc.Event {
	t.Helper()
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return usersvc.Event{SpecVersion: usersvc.EventSpecVersion, ID: fmt.Sprintf("0190b7a4-0000-7000-8000-%012d", pos),
		Source: usersvc.EventSource, Type: typ, Subject: "0195f0a2-5b1c-7e3a-9c41-6d2e8f3a1b07", Time: time.Now().UTC(),
		DataContentType: usersvc.EventContentType, Position: pos, Data: b}
}

// Each message event becomes one email to the right address, through a
// real SMTP exchange with the sink; other events send nothing.
func TestDeliverToSMTPSink(t *testing.T) {
	s := startSink(t)
	m, err := newMailer(s.ln.Addr().String(), "no-reply@example.com")
	if err != nil {
		t.Fatal(err)
	}
	link := "https://app.example.com/reset?token=abc"
	exp := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	tok := "q3Jt0bU5mX2Jm7Kq1dQv4Qx8C0yZpL9sTnWf6hRa2Eo"
	evs := []usersvc.Event{
		event(t, 1, usersvc.EventPasswordResetRequested, usersvc.PasswordResetEventData{Email: "grace@example.com", Token: tok, Link: &link, ExpiresAt: exp}),
		event(t, 2, usersvc.EventVerificationRequested, usersvc.VerificationEventData{Channel: "sms", Address: "+14155550123", Code: "111111", ExpiresAt: exp}),
		event(t, 3, usersvc.EventVerificationRequested, usersvc.VerificationEventData{Channel: "email", Address: "grace@example.com", Code: "042917", Token: &tok, ExpiresAt: exp}),
		event(t, 4, usersvc.EventEmailChangeRequested, usersvc.EmailChangeEventData{OldEmail: "grace@example.com", NewEmail: "grace@navy.example", Token: tok, ExpiresAt: exp}),
		event(t, 5, usersvc.EventEmailChangeNotice, usersvc.EmailChangeNoticeEventData{Email: "grace@example.com", NewEmail: "grace@navy.example", ExpiresAt: exp}),
		event(t, 6, usersvc.EventUserPasswordChanged, usersvc.UserIDEventData{UserID: "0195f0a2-5b1c-7e3a-9c41-6d2e8f3a1b07"}),
	}
	for _, ev := range evs {
		if err := m.deliver(t.Context(), ev); err != nil {
			t.Fatalf("%s: %v", ev.Type, err)
		}
	}
	got := s.received()
	want := []struct{ to, subject, contains string }{
		{"grace@example.com", "Reset your password", link},
		{"grace@example.com", "Verify your email", "042917"},
		{"grace@navy.example", "Confirm your new email", tok},
		{"grace@example.com", "Your email is about to change", "grace@navy.example"},
	}
	if len(got) != len(want) {
		t.Fatalf("%d emails, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		if g.from != "no-reply@example.com" || len(g.to) != 1 || g.to[0] != w.to ||
			!strings.Contains(g.data, "Subject: "+w.subject) || !strings.Contains(g.data, w.contains) {
			t.Errorf("email %d: from %s to %v\n%s\nwant to %s, subject %q, containing %q", i, g.from, g.to, g.data, w.to, w.subject, w.contains)
		}
	}
}
