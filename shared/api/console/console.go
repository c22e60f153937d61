// Package console serves the operator's console: a page and its script and style, embedded in the
// handler binary (nothing is fetched from anywhere else at run time). The page calls the REST API from
// the browser with the key the operator enters, so serving it needs no key (functions/console).
package console

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
)

//go:embed assets
var assets embed.FS

// Path is where the console is served: the console function's route under the host's /api prefix.
const Path = "/api/console/"

// Policy is the page's Content-Security-Policy: its own script and style only, API calls to its own
// origin, no framing. The script builds the page with DOM calls, never markup from the API.
const Policy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

type asset struct {
	body        []byte
	contentType string
	etag        string
}

// Handler serves the embedded files under Path; the bare Path is the page.
func Handler() http.Handler {
	files := map[string]asset{}
	root, _ := fs.Sub(assets, "assets")
	fs.WalkDir(root, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(root, name)
		sum := sha256.Sum256(body)
		files[name] = asset{body: body, contentType: mime.TypeByExtension(path.Ext(name)), etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return err
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", Policy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "the console is read with GET", http.StatusMethodNotAllowed)
			return
		}
		name := strings.TrimPrefix(r.URL.Path, Path)
		if name == "" {
			name = "index.html"
		}
		f, ok := files[name]
		if !ok || !strings.HasPrefix(r.URL.Path, Path) {
			http.Error(w, "no such file in the console: "+r.URL.Path, http.StatusNotFound)
			return
		}
		// Revalidated on every load, so a new deployment's page is never mixed with an old script.
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", f.etag)
		if r.Header.Get("If-None-Match") == f.etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		h.Set("Content-Type", f.contentType)
		w.Write(f.body)
	})
}
