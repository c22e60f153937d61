package apiclient

import (
	"context"
	"errors"
	"github.com/standby-dr/standby/shared/api/apiv1"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// The client never sends its key to another host: a redirect there is refused, and the other host
// sees no request.
func TestKeyNeverFollowsARedirectElsewhere(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
	}))
	defer other.Close()
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/steal", http.StatusTemporaryRedirect)
	}))
	defer api.Close()
	c := New(api.URL+"/api", "the-function-key")
	_, err := c.Group(context.Background(), "g1")
	if err == nil || !strings.Contains(err.Error(), "redirected to") || elsewhere.Load() != 0 {
		t.Fatalf("a redirect to another host: %v, %d requests there", err, elsewhere.Load())
	}
}

// A 400 is apiv1.ErrBadRequest (a request the API will never take); other statuses are not.
func TestARefusedRequestIsErrBadRequest(t *testing.T) {
	if err := error(&Error{Status: 400}); !errors.Is(err, apiv1.ErrBadRequest) {
		t.Errorf("400: %v is not ErrInvalid", err)
	}
	if err := error(&Error{Status: 503}); errors.Is(err, apiv1.ErrBadRequest) {
		t.Errorf("503 is ErrInvalid")
	}
}
