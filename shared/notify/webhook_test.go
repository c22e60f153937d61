package notify_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/standby-dr/standby/shared/notify"
	"github.com/standby-dr/standby/shared/recovery"
	"github.com/standby-dr/standby/shared/replication"
	"github.com/standby-dr/standby/shared/standin/memstore"
)

type receiver struct {
	mu       sync.Mutex
	statuses []int // answered in turn; 200 after
	got      []replication.Alert
	bad      []string
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if sig := r.Header.Get(recovery.SignatureHeader); sig != recovery.Sign([]byte("s3cret"), body) {
		rc.bad = append(rc.bad, "signature "+sig)
	}
	var a replication.Alert
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil || r.Header.Get(recovery.DeliveryHeader) != a.ID || r.Header.Get(notify.EventHeader) != "alert" {
		rc.bad = append(rc.bad, "body or headers: "+string(body))
	}
	rc.got = append(rc.got, a)
	status := 200
	if len(rc.statuses) > 0 {
		status, rc.statuses = rc.statuses[0], rc.statuses[1:]
	}
	w.WriteHeader(status)
}

func raise(t *testing.T, state replication.StateStore, id string, at time.Time) {
	t.Helper()
	a := replication.Alert{ID: id, Group: "g1", Kind: replication.AlertHealth, Status: replication.AlertRaised, Severity: "Critical", Health: "Critical", Message: "m", Time: at}
	if err := replication.RaiseAlert(context.Background(), state, slog.New(slog.DiscardHandler), a); err != nil {
		t.Fatal(err)
	}
}

func row(t *testing.T, state replication.StateStore, id string) replication.AlertRow {
	var r replication.AlertRow
	if _, err := state.Get(context.Background(), replication.AlertsTable, replication.AlertPartition, id, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// A receiver that fails gets the same signed alert again after each backoff, until it takes it; the
// delivery's log never shows the URL's token.
func TestAlertsAreRetriedWithBackoffUntilDelivered(t *testing.T) {
	ctx := context.Background()
	state := memstore.NewState()
	rc := &receiver{statuses: []int{500, 500, 503}}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	var logs bytes.Buffer
	w := &notify.Webhook{State: state, URL: srv.URL + "/hook?token=tok3n", Secret: []byte("s3cret"), HTTP: srv.Client(),
		Log: slog.New(slog.NewJSONHandler(&logs, nil)), Now: func() time.Time { return now }}
	raise(t, state, "g1-000001-health", now)
	raise(t, state, "g1-000001-health", now) // raised again: still one alert
	var attempts []time.Time
	for step := 0; step < 400 && row(t, state, "g1-000001-health").Delivery == replication.DeliveryPending; step++ {
		before := len(rc.got)
		if _, err := w.Deliver(ctx); err != nil {
			t.Fatal(err)
		}
		if len(rc.got) > before {
			attempts = append(attempts, now)
		}
		now = now.Add(time.Second)
	}
	r := row(t, state, "g1-000001-health")
	if r.Delivery != replication.DeliveryDelivered || r.Attempts != 4 || len(rc.got) != 4 || len(rc.bad) > 0 {
		t.Fatalf("delivery %s after %d attempts, received %d, bad %v", r.Delivery, r.Attempts, len(rc.got), rc.bad)
	}
	for i, want := range []time.Duration{notify.FirstRetry, 2 * notify.FirstRetry, 4 * notify.FirstRetry} {
		if gap := attempts[i+1].Sub(attempts[i]); gap != want {
			t.Errorf("gap before attempt %d: %s, want %s", i+2, gap, want)
		}
	}
	if strings.Contains(logs.String(), "tok3n") || strings.Contains(logs.String(), "s3cret") || !strings.Contains(logs.String(), "answered 500") {
		t.Errorf("logs: %s", logs.String())
	}
	if _, err := w.Deliver(ctx); err != nil || len(rc.got) != 4 {
		t.Fatalf("a delivered alert was sent again (%v)", err)
	}
}

// An alert the receiver never takes is abandoned a day after it was raised; with no webhook configured,
// alerts are marked as not sent rather than kept for a webhook configured later.
func TestAlertsAreAbandonedOrNotSent(t *testing.T) {
	ctx := context.Background()
	state := memstore.NewState()
	rc := &receiver{statuses: make([]int, 1000)}
	for i := range rc.statuses {
		rc.statuses[i] = 500
	}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	w := &notify.Webhook{State: state, URL: srv.URL, Secret: []byte("s3cret"), HTTP: srv.Client(), Log: slog.New(slog.DiscardHandler),
		Now: func() time.Time { return now }}
	raise(t, state, "a", now)
	for now.Sub(time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)) <= notify.GiveUp+notify.MaxRetryGap {
		w.Deliver(ctx)
		now = now.Add(time.Minute)
	}
	r := row(t, state, "a")
	// 15 s, 30 s, ... 8 min, then every 15 minutes for the rest of the day.
	if r.Delivery != replication.DeliveryAbandoned || r.Attempts < 90 || r.Attempts > 110 || !strings.Contains(r.LastError, "answered 500") {
		t.Fatalf("after a day: %s, %d attempts, %q", r.Delivery, r.Attempts, r.LastError)
	}
	raise(t, state, "b", now)
	(&notify.Webhook{State: state, Log: slog.New(slog.DiscardHandler), Now: func() time.Time { return now }}).Deliver(ctx)
	if r := row(t, state, "b"); r.Delivery != replication.DeliveryNone {
		t.Fatalf("without a webhook: %s", r.Delivery)
	}
	// A month on, both are pruned.
	now = now.Add(replication.EventRetention + time.Hour)
	w.Deliver(ctx)
	if rows, _, _ := replication.QueryAll[replication.AlertRow](ctx, state, replication.AlertsTable, replication.AlertPartition); len(rows) != 0 {
		t.Fatalf("%d alerts kept past the retention", len(rows))
	}
}
