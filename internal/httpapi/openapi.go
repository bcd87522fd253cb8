package httpapi

import (
	"embed"
	"mime"
	"net/http"
	"path"
)

// openAPIDocument is the OpenAPI 3.1 description of every route in routes.go.
//
//go:embed openapi.json
var openAPIDocument []byte

// docsFiles is the documentation page and its script and style, served by
// the binary itself.
//
//go:embed docs
var docsFiles embed.FS

// docsCSP allows the documentation page nothing but its own origin.
const docsCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"

// handleOpenAPI serves the OpenAPI document.
func handleOpenAPI() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(openAPIDocument)
	})
}

// handleDocs serves the HTML page that renders the OpenAPI document.
func handleDocs() http.Handler {
	page, err := docsFiles.ReadFile("docs/index.html")
	if err != nil {
		panic(err) // embedded at build time: cannot happen
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Security-Policy", docsCSP)
		h.Set("Cache-Control", "no-cache")
		_, _ = w.Write(page)
	})
}

// handleDocsAssets serves the script and style of the documentation page
// under /docs/assets/; anything else there is a 404 in the envelope.
func handleDocsAssets() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := path.Base(r.URL.Path)
		body, err := docsFiles.ReadFile("docs/assets/" + name)
		if err != nil || r.URL.Path != "/docs/assets/"+name {
			msg := "Not found"
			writeJSON(w, http.StatusNotFound, envelope{Error: &msg, Message: msg})
			return
		}
		h := w.Header()
		h.Set("Content-Type", mime.TypeByExtension(path.Ext(name)))
		h.Set("Content-Security-Policy", docsCSP)
		h.Set("Cache-Control", "no-cache")
		_, _ = w.Write(body)
	})
}
