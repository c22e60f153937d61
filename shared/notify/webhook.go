// Package notify delivers raised alerts (replication.RaiseAlert's outbox) to the operator's webhook:
// JSON, HMAC-signed like plan webhooks, retried with backoff. It runs in its own timer function, so a
// slow or failing receiver never holds up apply or the cutpoints timer.
package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/standby-dr/standby/shared/recovery"
	"github.com/standby-dr/standby/shared/replication"
)

// Delivery's timing: the first retry after FirstRetry, doubling to MaxRetryGap; an alert undelivered
// GiveUp after it was raised is abandoned (and logged). Claim is how long a sender holds an alert it
// is sending, so a concurrent run does not send it too.
const (
	FirstRetry  = 15 * time.Second
	MaxRetryGap = 15 * time.Minute
	GiveUp      = 24 * time.Hour
	Claim       = time.Minute
	// AttemptTimeout bounds one POST; RunBudget one run's sending (the timer fires again).
	AttemptTimeout = 10 * time.Second
	RunBudget      = 40 * time.Second
)

// EventHeader names what the body is ("alert"), beside failover's signature and delivery headers.
const EventHeader = "X-Standby-Event"

// Webhook sends the outbox's pending alerts.
type Webhook struct {
	State replication.StateStore
	// URL is StandbyAlertWebhook ("": no webhook: alerts are marked as not sent). It may carry a token
	// in its query, so only its redacted form is logged or reported.
	URL    string
	Secret []byte // StandbyWebhookSecret
	HTTP   *http.Client
	Log    *slog.Logger
	Now    func() time.Time
}

type claimed struct {
	row  replication.AlertRow
	etag replication.ETag
}

// Deliver sends every alert that is due, oldest first, and deletes delivered alerts older than the
// history's retention. It returns a line per alert it sent or gave up on.
func (w *Webhook) Deliver(ctx context.Context) ([]string, error) {
	if w.State == nil {
		return nil, fmt.Errorf("%w: the target state store (StandbyTargetStorage)", replication.ErrNotConfigured)
	}
	start := w.Now()
	rows, etags, err := replication.QueryAll[replication.AlertRow](ctx, w.State, replication.AlertsTable, replication.AlertPartition)
	if errors.Is(err, replication.ErrNotFound) {
		return nil, nil // no alert yet
	}
	if err != nil {
		return nil, fmt.Errorf("reading the alerts: %w", err)
	}
	var due []claimed
	var logs []string
	for i, row := range rows {
		switch {
		case row.Delivery == replication.DeliveryPending && !row.NextAttemptAt.After(start):
			due = append(due, claimed{row, etags[i]})
		case row.Delivery != replication.DeliveryPending && start.Sub(row.Time) > replication.EventRetention:
			if err := w.State.Delete(ctx, replication.AlertsTable, row.PartitionKey, row.RowKey, etags[i]); err != nil && !errors.Is(err, replication.ErrNotFound) && !errors.Is(err, replication.ErrConflict) {
				return logs, err
			}
		}
	}
	slices.SortFunc(due, func(a, b claimed) int { return a.row.Time.Compare(b.row.Time) })
	for _, c := range due {
		if w.Now().Sub(start) > RunBudget || ctx.Err() != nil {
			break // the rest waits for the next run
		}
		line, err := w.deliverOne(ctx, c)
		if err != nil {
			return logs, err
		}
		if line != "" {
			logs = append(logs, line)
		}
	}
	return logs, nil
}

// deliverOne claims the alert (ETag-guarded: a concurrent run that claimed it first wins), POSTs it and
// records the outcome: delivered, rescheduled with backoff, or abandoned.
func (w *Webhook) deliverOne(ctx context.Context, c claimed) (string, error) {
	now := w.Now().UTC()
	row := c.row
	if w.URL == "" {
		row.Delivery = replication.DeliveryNone
		_, err := w.State.Update(ctx, replication.AlertsTable, row, c.etag)
		return "", ignoreConflict(err)
	}
	row.NextAttemptAt = now.Add(Claim)
	etag, err := w.State.Update(ctx, replication.AlertsTable, row, c.etag)
	if errors.Is(err, replication.ErrConflict) {
		return "", nil // another run has it
	}
	if err != nil {
		return "", err
	}
	status, sendErr := w.post(ctx, row.Alert)
	row.Attempts++
	line := ""
	switch {
	case sendErr == nil:
		row.Delivery, row.LastError = replication.DeliveryDelivered, ""
		w.Log.Info("alert delivered", "alertId", row.ID, "alertKind", row.Kind, "group", row.Group, "status", status, "attempts", row.Attempts)
		line = fmt.Sprintf("alert %s delivered (attempt %d)", row.ID, row.Attempts)
	case now.Sub(row.Time) >= GiveUp:
		row.Delivery, row.LastError = replication.DeliveryAbandoned, sendErr.Error()
		w.Log.Error("alert delivery abandoned", "alertId", row.ID, "alertKind", row.Kind, "group", row.Group, "attempts", row.Attempts, "err", sendErr)
		line = fmt.Sprintf("alert %s abandoned after %d attempts: %v", row.ID, row.Attempts, sendErr)
	default:
		row.LastError, row.NextAttemptAt = sendErr.Error(), now.Add(Backoff(row.Attempts))
		w.Log.Warn("alert delivery failed", "alertId", row.ID, "alertKind", row.Kind, "group", row.Group, "attempts", row.Attempts,
			"next", row.NextAttemptAt, "err", sendErr)
		line = fmt.Sprintf("alert %s: attempt %d failed (%v), next at %s", row.ID, row.Attempts, sendErr, row.NextAttemptAt.Format(time.RFC3339))
	}
	_, err = w.State.Update(ctx, replication.AlertsTable, row, etag)
	return line, ignoreConflict(err)
}

// Backoff is the wait after the attempts-th failed attempt.
func Backoff(attempts int) time.Duration {
	gap := FirstRetry
	for i := 1; i < attempts && gap < MaxRetryGap; i++ {
		gap *= 2
	}
	return min(gap, MaxRetryGap)
}

// post sends one alert; an error says what came back, never the URL's query or the secret.
func (w *Webhook) post(ctx context.Context, a replication.Alert) (int, error) {
	if len(w.Secret) == 0 {
		return 0, errors.New("alerts are signed with StandbyWebhookSecret, which is not set")
	}
	body, err := json.Marshal(a)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, AttemptTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("the webhook URL %s: %v", recovery.RedactURL(w.URL), replication.Redact(err.Error()))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(recovery.SignatureHeader, recovery.Sign(w.Secret, body))
	req.Header.Set(recovery.DeliveryHeader, a.ID)
	req.Header.Set(EventHeader, "alert")
	resp, err := w.HTTP.Do(req)
	if err != nil {
		return 0, fmt.Errorf("POST %s: %s", recovery.RedactURL(w.URL), replication.Redact(strings.ReplaceAll(err.Error(), w.URL, recovery.RedactURL(w.URL))))
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, fmt.Errorf("POST %s answered %d: %s", recovery.RedactURL(w.URL), resp.StatusCode, strings.TrimSpace(string(answer)))
	}
	return resp.StatusCode, nil
}

func ignoreConflict(err error) error {
	if errors.Is(err, replication.ErrConflict) {
		return nil
	}
	return err
}
