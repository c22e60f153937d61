package recovery

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A boot group's webhooks are called one per step run, each kept as done before the next is called:
// ten slow webhooks in one run would outlive functionTimeout, and a redelivered run calls none again.
func TestWebhookActionsRunOnePerStep(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls.Add(1) }))
	defer srv.Close()
	r := &JobRunner{Log: slog.New(slog.DiscardHandler), Now: time.Now, WebhookSecret: []byte("k"), HTTP: srv.Client()}
	j := &Job{Plan: "p", Work: JobWork{}}
	j.PartitionKey = strings.Repeat("a", 32)
	var actions []Action
	for _, name := range []string{"one", "two", "three"} {
		actions = append(actions, Action{Name: name, Type: ActionWebhook, URL: srv.URL, TimeoutSeconds: 5, ExpectStatus: 200})
	}
	b := BootGroup{Name: "db"}
	for i, name := range []string{"one", "two", "three"} {
		what, again, err := r.runActions(context.Background(), j, b, "pre", actions)
		if err != nil || again == 0 || int(calls.Load()) != i+1 || j.Work.ActionDone(name) != "answered 200" || !strings.Contains(what, "action "+name) {
			t.Fatalf("run %d: %q %v %v, %d calls, work %v", i, what, again, err, calls.Load(), j.Work)
		}
	}
	what, again, err := r.runActions(context.Background(), j, b, "pre", actions)
	if err != nil || again != 0 || calls.Load() != 3 || what != "boot group db: pre actions done: one, two, three" {
		t.Fatalf("the last run: %q %v %v, %d calls", what, again, err, calls.Load())
	}
}
