package apiserver

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"

	"github.com/standby-dr/standby/shared/replication"
)

// MaxBody bounds a request body; maxDrain bounds what is read past it (above the Functions host's own
// limit, FUNCTIONS_REQUEST_BODY_SIZE_LIMIT, 100 MB by default, so every body the host forwards).
const (
	MaxBody  = 1 << 20
	maxDrain = 128 << 20
)

// ErrNotJSON is a write whose Content-Type is not application/json where one is required (415).
var ErrNotJSON = errors.New("unsupported media type")

// DecodeBody reads a JSON body of the expected shape, refusing unknown fields, repeated keys and
// trailing data.
func DecodeBody(r *http.Request, into any) error {
	data, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
	if err != nil {
		return fmt.Errorf("%w: reading the body: %v", replication.ErrInvalid, err)
	}
	if len(data) > MaxBody {
		// The rest is read and dropped before the 413 goes out: a server that answers and closes while
		// the host is still sending resets the connection under it, and the caller gets the host's
		// 502 instead of this answer (net/http closes a connection whose body was left unread).
		n, _ := io.Copy(io.Discard, io.LimitReader(r.Body, maxDrain))
		return fmt.Errorf("%w: the body has %d bytes or more, at most %d", replication.ErrTooLarge, int64(len(data))+n, MaxBody)
	}
	if err := replication.DecodeJSON(data, into, "body", "the expected shape"); err != nil {
		return fmt.Errorf("%w: %v", replication.ErrInvalid, err)
	}
	return nil
}

// DecodeOptionalBody is DecodeBody for an optional body (none: into stays as it is).
func DecodeOptionalBody(r *http.Request, into any) error {
	if r.ContentLength == 0 {
		return nil
	}
	return DecodeBody(r, into)
}

// RequireJSONWrite refuses a write (any method but GET, HEAD and OPTIONS) whose Content-Type is not
// application/json, with or without a body. The identity door authenticates by what the browser
// carries by itself (App Service's session cookie), and a page on another site can send a "simple"
// POST (text/plain, a form) with it and no preflight; application/json makes the browser ask first.
func RequireJSONWrite(r *http.Request) error {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return nil
	}
	if media, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || media != "application/json" {
		return fmt.Errorf("%w: %s %s at the identity door needs Content-Type: application/json", ErrNotJSON, r.Method, r.URL.Path)
	}
	return nil
}
