package httpapi

import (
	"html/template"
	"net/http"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/account"
)

// unsubscribeTmpl is the minimal page a one-click unsubscribe link shows in
// a browser: a GET only asks (RFC 8058: a GET must change nothing); the
// button posts the one-click body to the same address.
var unsubscribeTmpl = template.Must(template.New("unsubscribe").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>Unsubscribe</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 32rem; margin: 3rem auto; padding: 0 1rem">
{{if .Unavailable}}<h1>Unsubscribing is not available right now</h1><p>Try the link again later.</p>
{{else if not .Valid}}<h1>This link is not valid</h1><p>It may have been cut short. Use the link from the message again, or change your preferences in the app.</p>
{{else if .Done}}<h1>You are unsubscribed</h1><p>You will no longer receive <strong>{{.Category}}</strong> messages{{with .Channel}} by {{.}}{{end}}.</p>
{{else}}<h1>Unsubscribe?</h1><p>Stop receiving <strong>{{.Category}}</strong> messages{{with .Channel}} by {{.}}{{end}}.</p>
<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click"><button type="submit">Unsubscribe</button></form>
{{end}}</body></html>
`))

// unsubscribePage writes the page for res: done after the change, else the question.
func unsubscribePage(w http.ResponseWriter, status int, res account.UnsubscribeResult, done bool) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; form-action 'self'; frame-ancestors 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	_ = unsubscribeTmpl.Execute(w, struct {
		Valid, Done, Unavailable bool
		Category, Channel        string
	}{status < 400, done, status >= 500, res.Category, res.Channel})
}

// handleUnsubscribePage answers the GET of a one-click unsubscribe link: a
// confirmation page with a button, and no change of state. A bad token is
// a 400 page.
func handleUnsubscribePage(accounts *account.Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, err := accounts.CheckUnsubscribe(r.PathValue("token"))
		if err != nil {
			unsubscribeErrorPage(w, err)
			return
		}
		unsubscribePage(w, http.StatusOK, res, false)
	})
}

// unsubscribeErrorPage answers a browser whose unsubscribe failed: a 4xx
// says the link is not valid (or no longer is), a 5xx to try later.
func unsubscribeErrorPage(w http.ResponseWriter, err error) {
	status := statusOf(usersvc.ErrorCode(err))
	if status >= 500 {
		status = http.StatusServiceUnavailable
	}
	unsubscribePage(w, max(status, http.StatusBadRequest), account.UnsubscribeResult{}, false)
}
