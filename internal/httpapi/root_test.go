package httpapi_test

import (
	"net/http"
	"testing"
)

// TestRootRedirectsToDocs checks that GET / (and HEAD /) sends a browser to
// the documentation page, and that only the root path does: any other
// unknown path stays a 404.
func TestRootRedirectsToDocs(t *testing.T) {
	h := newHarness(t)
	noFollow := *h.srv.Client()
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		req, _ := http.NewRequest(method, h.srv.URL+"/", nil)
		resp, err := noFollow.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/docs" {
			t.Errorf("%s /: %d, Location %q; want 302 to /docs", method, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	follow := &http.Client{Transport: h.srv.Client().Transport}
	resp, err := follow.Get(h.srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/docs" {
		t.Errorf("following GET /: %d at %s, want 200 at /docs", resp.StatusCode, resp.Request.URL.Path)
	}
	if r := h.do("GET", "/nope", nil); r.Status != http.StatusNotFound {
		t.Errorf("GET /nope: %d, want 404", r.Status)
	}
	if r := h.do("POST", "/", nil); r.Status != http.StatusMethodNotAllowed {
		t.Errorf("POST /: %d, want 405", r.Status)
	}
}
