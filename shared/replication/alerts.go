package replication

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"
)

// Alerts are raised as Site Recovery raises them: once per change of a group's condition, never per
// timer tick. Each is a row of the alerts table (the outbox a webhook sender drains, shared/notify), an
// event in the group's history and a log record with stable keys ("standby alert"; alertKind, severity,
// status, group, job), so an Azure Monitor log alert can select them.
const AlertsTable = "alerts"

// AlertPartition holds every alert: the sender reads the outbox in one query.
const AlertPartition = "outbox"

// Alert kinds.
const (
	AlertHealth             = "health"              // the group's health changed (Health says to what)
	alertRPOExceeded        = "rpo-exceeded"        // RPO above the policy's warning threshold
	alertNoRecoveryPoint    = "no-recovery-point"   // no crash-consistent point for the policy's time
	alertReplicationStopped = "replication-stopped" // the group needs a resync (ResyncRequired)
	AlertDrillOverdue       = "drill-overdue"       // no drill succeeded within the drill's readiness window
	AlertJobFailed          = "job-failed"
)

// Alert statuses and severities.
const (
	AlertRaised   = "raised"
	alertResolved = "resolved"

	SeverityCritical      = "Critical"
	SeverityWarning       = "Warning"
	severityInformational = "Informational"
)

// Delivery states of an alert's webhook POST.
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryAbandoned = "abandoned" // retried for a day (notify.GiveUp) without a 2xx
	DeliveryNone      = "none"      // no webhook was configured when it was raised
)

// Alert is one alert, as the webhook receives it.
type Alert struct {
	ID       string    `json:"id"`
	Group    string    `json:"group"`
	Kind     string    `json:"kind"`
	Status   string    `json:"status"`
	Severity string    `json:"severity"`
	Health   string    `json:"health,omitempty"` // a health alert's new level
	Job      string    `json:"job,omitempty"`
	Message  string    `json:"message"`
	Time     time.Time `json:"time"`
}

// AlertRow is an alert as stored: the alert and its webhook delivery.
type AlertRow struct {
	Keys
	Alert
	Delivery      string    `json:"Delivery"`
	Attempts      int       `json:"Attempts"`
	NextAttemptAt time.Time `json:"NextAttemptAt"`
	LastError     string    `json:"LastError,omitempty"`
}

// RaiseAlert records an alert once: the outbox row (its id is the alert's, so raising it again finds
// it), then the group's event and the log record. It is idempotent: a retry after a crash re-records
// the same event (same time, same key) and logs again.
func RaiseAlert(ctx context.Context, store StateStore, log *slog.Logger, a Alert) error {
	row := AlertRow{Keys: Keys{PartitionKey: AlertPartition, RowKey: a.ID}, Alert: a, Delivery: DeliveryPending, NextAttemptAt: a.Time}
	if _, err := store.Insert(ctx, AlertsTable, row); errors.Is(err, ErrConflict) {
		if _, err := store.Get(ctx, AlertsTable, AlertPartition, a.ID, &row); err != nil {
			return fmt.Errorf("alert %s: %w", a.ID, err)
		}
	} else if err != nil {
		return fmt.Errorf("recording alert %s: %w", a.ID, err)
	}
	a = row.Alert
	log.Warn("standby alert", "alertId", a.ID, "alertKind", a.Kind, "status", a.Status, "severity", a.Severity,
		"group", a.Group, "job", a.Job, "health", a.Health, "detail", a.Message)
	if a.Group == "" {
		return nil
	}
	return recordEvent(ctx, store, a.Group, "alert", fmt.Sprintf("%s %s (%s): %s", a.Kind, a.Status, a.Severity, a.Message), a.Time, a.ID)
}

// alertConditions are the group's alert conditions now, by kind (health: its level). A condition not
// rated in the group's state keeps what was last alerted: a group in initial replication or failed
// over has no RPO to rate.
func alertConditions(r *GroupRecord, alerted map[string]string, now time.Time) map[string]string {
	c := maps.Clone(alerted)
	switch r.State {
	case StateProtected:
		th, rpo := thresholds(r.Policy), r.RPO(now)
		setIf(c, alertRPOExceeded, rpo > th.Warning, fmt.Sprintf("RPO %s exceeds %s", HumanDuration(rpo), HumanDuration(th.Warning)))
		setIf(c, alertNoRecoveryPoint, noRecentPoint(r.LastPointTime, now, th), fmt.Sprintf("no crash-consistent recovery point for %s", HumanDuration(th.NoPoint)))
		if r.Health != "" {
			c[AlertHealth] = r.Health
		}
	}
	setIf(c, alertReplicationStopped, r.State == StateResyncRequired, r.Reason)
	if r.State == StateProtected {
		overdue, why := drillOverdue(r, now)
		setIf(c, AlertDrillOverdue, overdue, why)
	}
	return c
}

func setIf(c map[string]string, kind string, on bool, why string) {
	if on {
		c[kind] = why
	} else {
		delete(c, kind)
	}
}

// alertChanges are the alerts the difference between what was alerted and the conditions now makes,
// in a fixed order. A condition's text changing (its figures grow) is no new alert.
func alertChanges(group string, seq int64, was, now map[string]string, r *GroupRecord, at time.Time) []Alert {
	var out []Alert
	add := func(kind, status, severity, msg string) {
		out = append(out, Alert{ID: fmt.Sprintf("%s-%06d-%s", group, seq, kind), Group: group, Kind: kind, Status: status,
			Severity: severity, Message: msg, Time: at})
	}
	if h := now[AlertHealth]; h != was[AlertHealth] && !(was[AlertHealth] == "" && h == HealthHealthy) {
		status, severity := AlertRaised, h
		if h == HealthHealthy {
			status, severity = alertResolved, severityInformational
		}
		add(AlertHealth, status, severity, fmt.Sprintf("health %s (was %s)", h, orNone(was[AlertHealth])))
		out[len(out)-1].Health = h
		if r.HealthReason != "" {
			out[len(out)-1].Message += ": " + r.HealthReason
		}
	}
	for _, kind := range []string{alertRPOExceeded, alertNoRecoveryPoint, alertReplicationStopped, AlertDrillOverdue} {
		_, on := now[kind]
		_, wasOn := was[kind]
		switch {
		case on && !wasOn:
			severity := SeverityCritical
			if kind == alertRPOExceeded || kind == AlertDrillOverdue {
				severity = SeverityWarning
			}
			add(kind, AlertRaised, severity, now[kind])
		case !on && wasOn:
			add(kind, alertResolved, severityInformational, kind+" cleared")
		}
	}
	return out
}

func orNone(s string) string {
	if s == "" {
		return "not rated"
	}
	return s
}

// encodeAlerted and decodeAlerted keep the alerted conditions in the group's row, sorted: each kind,
// and the health's level ("health=Critical,rpo-exceeded"). A condition's text is not kept: its figures
// change every tick, and only a change of condition is an alert.
func encodeAlerted(c map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(c)) {
		if k == AlertHealth {
			k += "=" + c[k]
		}
		parts = append(parts, k)
	}
	return strings.Join(parts, ",")
}

func decodeAlerted(s string) map[string]string {
	c := map[string]string{}
	for part := range strings.SplitSeq(s, ",") {
		if k, v, _ := strings.Cut(part, "="); k != "" {
			c[k] = v
		}
	}
	return c
}

// raiseGroupAlerts raises the alerts a change of the group's conditions makes, then records them as
// alerted, guarded by AlertSeq: a tick that crashed between the two raises the same alerts (same ids)
// again, and a concurrent tick that alerted first leaves this one nothing to record.
func (s *Upkeep) raiseGroupAlerts(ctx context.Context, rec GroupRecord, now time.Time) ([]string, error) {
	was := decodeAlerted(rec.Alerted)
	conds := alertConditions(&rec, was, now)
	changes := alertChanges(rec.Group(), rec.AlertSeq+1, was, conds, &rec, now)
	var logs []string
	for _, a := range changes {
		if err := RaiseAlert(ctx, s.State, s.Log, a); err != nil {
			return logs, err
		}
		logs = append(logs, fmt.Sprintf("group %s: alert %s %s (%s): %s", a.Group, a.Kind, a.Status, a.Severity, a.Message))
	}
	if len(changes) == 0 {
		return nil, nil
	}
	_, err := UpdateGroup(ctx, s.State, rec.Group(), HealthRow, func(r *GroupRecord) error {
		if r.AlertSeq != rec.AlertSeq {
			return ErrUnchanged // another tick alerted first
		}
		r.Alerted, r.AlertSeq = encodeAlerted(conds), rec.AlertSeq+1
		return nil
	})
	return logs, err
}
