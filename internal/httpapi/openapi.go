package httpapi

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
)

// openAPIDocument is the OpenAPI 3.1 description of every route in routes.go.
//
//go:embed openapi.json
var openAPIDocument []byte

// docsFiles is the documentation page, its script and style, and the
// Swagger UI release that renders the OpenAPI document (vendored from the
// swagger-ui-dist npm package: see docs/swagger-ui/README.md), all served
// by the binary itself.
//
//go:embed docs
var docsFiles embed.FS

// docsAssetFiles maps each name served under /docs/assets/ to its embedded
// file: the page's own script and style, and the Swagger UI bundle and
// stylesheet. Nothing else under docs/ is served.
var docsAssetFiles = map[string]string{
	"docs.js":              "docs/assets/docs.js",
	"docs.css":             "docs/assets/docs.css",
	"swagger-ui-bundle.js": "docs/swagger-ui/swagger-ui-bundle.js",
	"swagger-ui.css":       "docs/swagger-ui/swagger-ui.css",
}

// docsAsset is one file served under /docs/assets/, with its validator and
// its gzip form (the bundle is 1.7 MB as is, about a quarter compressed).
type docsAsset struct {
	body, gzipped []byte
	contentType   string
	etag          string
}

// docsAssets loads the served files once, on first use.
var docsAssets = sync.OnceValue(func() map[string]docsAsset {
	out := make(map[string]docsAsset, len(docsAssetFiles))
	for name, file := range docsAssetFiles {
		body, err := docsFiles.ReadFile(file)
		if err != nil {
			panic(err) // embedded at build time: cannot happen
		}
		var gz bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
		_, _ = zw.Write(body)
		_ = zw.Close()
		sum := sha256.Sum256(body)
		out[name] = docsAsset{
			body:        body,
			gzipped:     gz.Bytes(),
			contentType: mime.TypeByExtension(path.Ext(name)),
			etag:        `W/"` + hex.EncodeToString(sum[:16]) + `"`,
		}
	}
	return out
})

// docsCSP allows the documentation page nothing but its own origin: no
// inline script or style, no other host. The one addition is data: images,
// which the vendored swagger-ui.css uses for its icons (select arrows, the
// copy button, model toggles); an image cannot run script.
const docsCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"

// handleOpenAPI serves the OpenAPI document.
func handleOpenAPI() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(openAPIDocument)
	})
}

// handleDocs serves the HTML page that renders the OpenAPI document with
// Swagger UI.
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

// handleDocsAssets serves the files of the documentation page under
// /docs/assets/ (see docsAssetFiles), revalidated by ETag and gzipped for
// clients that accept it; anything else there is a 404 in the envelope.
func handleDocsAssets() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := path.Base(r.URL.Path)
		a, ok := docsAssets()[name]
		if !ok || r.URL.Path != "/docs/assets/"+name {
			msg := "Not found"
			writeJSON(w, http.StatusNotFound, envelope{Error: &msg, Message: msg})
			return
		}
		h := w.Header()
		h.Set("Content-Type", a.contentType)
		h.Set("Content-Security-Policy", docsCSP)
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", a.etag)
		h.Set("Vary", "Accept-Encoding")
		if etagMatches(r.Header.Get("If-None-Match"), a.etag) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		body := a.body
		if acceptsGzip(r.Header.Values("Accept-Encoding")) {
			h.Set("Content-Encoding", "gzip")
			body = a.gzipped
		}
		h.Set("Content-Length", strconv.Itoa(len(body)))
		_, _ = w.Write(body)
	})
}

// etagMatches reports whether an If-None-Match header names etag (compared
// weakly, as RFC 9110 asks for If-None-Match) or is "*".
func etagMatches(header, etag string) bool {
	for _, tag := range strings.Split(header, ",") {
		tag = strings.TrimSpace(tag)
		if tag == "*" || tag != "" && strings.TrimPrefix(tag, "W/") == strings.TrimPrefix(etag, "W/") {
			return true
		}
	}
	return false
}

// acceptsGzip reports whether the Accept-Encoding values accept gzip:
// listed by name, with no q=0.
func acceptsGzip(values []string) bool {
	for _, v := range values {
		for _, coding := range strings.Split(v, ",") {
			name, params, _ := strings.Cut(coding, ";")
			if !strings.EqualFold(strings.TrimSpace(name), "gzip") {
				continue
			}
			for _, param := range strings.Split(params, ";") {
				k, v, _ := strings.Cut(strings.TrimSpace(param), "=")
				if q, err := strconv.ParseFloat(strings.TrimSpace(v), 64); strings.EqualFold(k, "q") && err == nil && q == 0 {
					return false
				}
			}
			return true
		}
	}
	return false
}
