package replication

import (
	"fmt"
	"strings"
	"time"
)

// A group's health: how far the target lags (RPO), how old its newest point is, whether its agent
// reports and whether it waits for a resync — each a HealthError with its cause and what to do, the
// worst one's severity the group's level. Only a group replicating this way is rated.

// Health levels.
const (
	HealthHealthy  = "Healthy"
	HealthWarning  = "Warning"
	HealthCritical = "Critical"
)

// healthThresholds are the policy's RPO alert levels (defaults: warning above 15 minutes, critical
// above 30, critical when no crash-consistent point for 60 minutes — Site Recovery's error 153007).
type healthThresholds struct {
	Warning, Critical, NoPoint time.Duration
}

// DefaultHealth are the default thresholds.
var DefaultHealth = healthThresholds{Warning: 15 * time.Minute, Critical: 30 * time.Minute, NoPoint: 60 * time.Minute}

// AgentSilentAfter is how long an agent that reported before may stay silent (it reports every second)
// before its group is not Healthy: its reports stopped, or the API refuses them.
const AgentSilentAfter = time.Minute

// ApplyStalledAfter is how long batches may wait with nothing applied before apply counts as stalled.
const ApplyStalledAfter = 2 * time.Minute

// HealthError is one thing wrong with a group's replication: a stable code, how bad, what is wrong, and
// what the operator does about it.
type HealthError struct {
	Code     string
	Severity string
	Message  string
	Action   string
}

// Health error codes.
const (
	HealthRPOExceeded        = "rpo-exceeded"
	HealthNoRecentPoint      = "no-recent-point"
	HealthInitialReplication = "initial-replication"
	HealthAgentSilent        = "agent-silent"
	HealthApplyStalled       = "apply-stalled"
	HealthResyncRequired     = "resync-required"
)

// HumanDuration writes a duration as a person does, to the second: "45 s", "3 min 56 s", "2 h 5 min",
// "3 d 4 h" (the console's dur does the same).
func HumanDuration(d time.Duration) string {
	sec := int64(max(d, 0).Round(time.Second) / time.Second)
	if sec < 60 {
		return fmt.Sprintf("%d s", sec)
	}
	units := []struct {
		name string
		n    int64
	}{{"d", 86400}, {"h", 3600}, {"min", 60}, {"s", 1}}
	for i, u := range units[:3] {
		if sec >= u.n {
			q1, q2 := sec/u.n, sec%u.n/units[i+1].n
			if q2 == 0 {
				return fmt.Sprintf("%d %s", q1, u.name)
			}
			return fmt.Sprintf("%d %s %d %s", q1, u.name, q2, units[i+1].name)
		}
	}
	return ""
}

// Replication states (ReplicationState).
const (
	ReplicationStopped      = "stopped"
	ReplicationInitialSync  = "initialSync"
	ReplicationRescan       = "rescan"
	ReplicationDisconnected = "disconnected"
	ReplicationStalled      = "stalled"
	ReplicationBacklog      = "backlog"
	ReplicationContinuous   = "continuous"
)

// HealthLevels and HealthErrorCodes are every level and every code a rating gives; ReplicationStates
// every state ReplicationState says.
var (
	HealthLevels      = []string{HealthHealthy, HealthWarning, HealthCritical}
	HealthErrorCodes  = []string{HealthRPOExceeded, HealthNoRecentPoint, HealthInitialReplication, HealthAgentSilent, HealthApplyStalled, HealthResyncRequired}
	ReplicationStates = []string{ReplicationStopped, ReplicationInitialSync, ReplicationRescan, ReplicationDisconnected,
		ReplicationStalled, ReplicationBacklog, ReplicationContinuous}
)

// noRecentPoint: the newest crash-consistent point (none: zero) is older than the policy allows.
func noRecentPoint(lastPoint, now time.Time, th healthThresholds) bool {
	return lastPoint.IsZero() || now.Sub(lastPoint) > th.NoPoint
}

// rpoErrors rate a group's RPO and the age of its newest recovery point.
func rpoErrors(rpo time.Duration, lastPoint time.Time, now time.Time, th healthThresholds) []HealthError {
	var errs []HealthError
	const rpoAction = "see the RPO chart: compare the agent's upload with the apply rate (a slow or busy link, a throttled account), and that apply runs"
	switch {
	case rpo > th.Critical:
		errs = append(errs, HealthError{HealthRPOExceeded, HealthCritical, fmt.Sprintf("RPO %s exceeds %s", HumanDuration(rpo), HumanDuration(th.Critical)), rpoAction})
	case rpo > th.Warning:
		errs = append(errs, HealthError{HealthRPOExceeded, HealthWarning, fmt.Sprintf("RPO %s exceeds %s", HumanDuration(rpo), HumanDuration(th.Warning)), rpoAction})
	}
	if noRecentPoint(lastPoint, now, th) {
		age := "none yet"
		if !lastPoint.IsZero() {
			age = "the newest is " + HumanDuration(now.Sub(lastPoint)) + " old"
		}
		errs = append(errs, HealthError{HealthNoRecentPoint, HealthCritical, fmt.Sprintf("no crash-consistent recovery point for %s (%s)", HumanDuration(th.NoPoint), age),
			"check that the agent makes markers (it runs and reports) and that the cutpoints timer runs (the function app's log)"})
	}
	return errs
}

// RateGroup rates a group replicating this way ("" and nothing for one that is not: failed over,
// disabled, running the other way).
func RateGroup(r *GroupRecord, now time.Time) (string, []HealthError) {
	if r.ReplicationStopped() {
		return "", nil
	}
	errs := rpoErrors(r.RPO(now), r.LastPointTime, now, thresholds(r.Policy))
	if r.State == StateInitialReplication {
		errs = []HealthError{{HealthInitialReplication, HealthWarning, "initial replication in progress",
			"wait for the baseline to finish (its progress and ETA are in the group's view); the group is Protected after it"}}
	}
	if !r.AgentSeenAt.IsZero() && now.Sub(r.AgentSeenAt) > AgentSilentAfter {
		msg := fmt.Sprintf("the agent has not reported for %s (last at %s)", HumanDuration(now.Sub(r.AgentSeenAt)), r.AgentSeenAt.UTC().Format(time.RFC3339))
		if r.AgentLastError != "" {
			msg += "; its last error: " + r.AgentLastError
		}
		errs = append(errs, HealthError{HealthAgentSilent, HealthWarning, msg,
			"check standby-agent on the group's VMs (systemctl status standby-agent; journalctl -u standby-agent) and their way to the API; " +
				"an agent whose key was issued again needs the new one"})
	} else if stalled(r, now) {
		errs = append(errs, HealthError{HealthApplyStalled, HealthWarning,
			fmt.Sprintf("%d batches wait to be applied and none was applied for %s", r.Pending(), HumanDuration(now.Sub(r.LastAppliedAt))),
			"check the function app's apply function (its log, the change hub's consumer group) and the group's events for a stopped batch"})
	}
	if r.State == StateResyncRequired {
		errs = append(errs, HealthError{HealthResyncRequired, HealthWarning, "a resync is required (" + Truncate(r.Reason, 200) + ")",
			"the agent starts it at its next report: make sure it runs"})
	}
	return healthLevel(errs), errs
}

// stalled: the agent reports batches apply has not taken for ApplyStalledAfter.
func stalled(r *GroupRecord, now time.Time) bool {
	return r.Pending() > 0 && !r.LastAppliedAt.IsZero() && now.Sub(r.LastAppliedAt) > ApplyStalledAfter
}

// ReplicationState is where a group's replication stands, in the words of AWS DRS's data replication
// states: stopped, initialSync, rescan (a resync), disconnected (the agent is silent), stalled (apply
// takes nothing), backlog (batches wait) or continuous.
func ReplicationState(r *GroupRecord, now time.Time) string {
	switch {
	case r.ReplicationStopped():
		return ReplicationStopped
	case r.State == StateInitialReplication:
		return ReplicationInitialSync
	case r.State == StateResyncRequired || r.State == StateResyncing:
		return ReplicationRescan
	case !r.AgentSeenAt.IsZero() && now.Sub(r.AgentSeenAt) > AgentSilentAfter:
		return ReplicationDisconnected
	case stalled(r, now):
		return ReplicationStalled
	case r.Pending() > 0:
		return ReplicationBacklog
	}
	return ReplicationContinuous
}

// healthLevel is the worst severity among errs (Healthy for none).
func healthLevel(errs []HealthError) string {
	level := HealthHealthy
	for _, e := range errs {
		if e.Severity == HealthCritical || level == HealthHealthy {
			level = e.Severity
		}
	}
	return level
}

// HealthReason is the errors' messages, joined.
func HealthReason(errs []HealthError) string {
	var msgs []string
	for _, e := range errs {
		msgs = append(msgs, e.Message)
	}
	return strings.Join(msgs, "; ")
}

// thresholds are the group's policy's, defaults where the policy predates them.
func thresholds(p Policy) healthThresholds {
	th := p.HealthThresholds()
	if th.Warning == 0 || th.Critical == 0 || th.NoPoint == 0 {
		return DefaultHealth
	}
	return th
}
