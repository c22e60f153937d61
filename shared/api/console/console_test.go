package console_test

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/standby-dr/standby/shared/api/console"
)

func get(t *testing.T, h http.Handler, method, path string, header http.Header) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, path, nil)
	for k, v := range header {
		r.Header[k] = v
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// The page and its files are served with the strict policy, revalidated by ETag; nothing else is.
func TestConsoleServesItsFilesOnly(t *testing.T) {
	h := console.Handler()
	for path, typ := range map[string]string{console.Path: "text/html", console.Path + "index.html": "text/html",
		console.Path + "console.js": "text/javascript", console.Path + "console.css": "text/css"} {
		w := get(t, h, "GET", path, nil)
		if w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), typ) || w.Header().Get("Content-Security-Policy") != console.Policy ||
			w.Header().Get("X-Content-Type-Options") != "nosniff" || w.Header().Get("Cache-Control") != "no-cache" || w.Body.Len() == 0 {
			t.Errorf("GET %s: %d %v", path, w.Code, w.Header())
		}
		again := get(t, h, "GET", path, http.Header{"If-None-Match": {w.Header().Get("ETag")}})
		if again.Code != http.StatusNotModified || again.Body.Len() != 0 {
			t.Errorf("GET %s again: %d", path, again.Code)
		}
	}
	for _, path := range []string{console.Path + "nope.js", console.Path + "../console.go", console.Path + "assets/index.html"} {
		if w := get(t, h, "GET", path, nil); w.Code != 404 {
			t.Errorf("GET %s: %d", path, w.Code)
		}
	}
	if w := get(t, h, "POST", console.Path, nil); w.Code != 405 || w.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: %d %v", w.Code, w.Header())
	}
}

// The page keeps to its own policy: no inline script, style or handler, nothing from another origin
// (Chromium enforces the policy in the browser tests; this names the line).
func TestPageNeedsNothingThePolicyRefuses(t *testing.T) {
	h := console.Handler()
	for _, name := range []string{"index.html", "console.js", "console.css"} {
		body := get(t, h, "GET", console.Path+name, nil).Body.String()
		for _, bad := range []*regexp.Regexp{regexp.MustCompile(`<script>|<script(\s+type="[^"]*")?\s*>`), regexp.MustCompile(`<style`),
			regexp.MustCompile(`\sstyle="`), regexp.MustCompile(`\son[a-z]+="`),
			regexp.MustCompile(`\beval\(|new Function\(|innerHTML\s*=`)} {
			if loc := bad.FindStringIndex(body); loc != nil {
				t.Errorf("%s: %q at byte %d", name, body[loc[0]:min(loc[1]+20, len(body))], loc[0])
			}
		}
		for _, u := range regexp.MustCompile(`https?://[^\s'"`+"`"+`]+`).FindAllString(body, -1) {
			if u != "http://www.w3.org/2000/svg" { // a namespace name, never fetched
				t.Errorf("%s names %s: the console fetches nothing from another origin", name, u)
			}
		}
	}
}
