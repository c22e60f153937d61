// Package failover is the Service Bus-triggered function that runs failover jobs, one step per message,
// one job per group at a time (session id = group). In this foundation it records each job message it
// receives against the job row the API created.
package failover

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/standby-dr/standby/shared/funcproto"
	"github.com/standby-dr/standby/shared/replication"
)

// Binding is the trigger's name in function.json.
const Binding = "job"

// JobsTable holds one row per job: partition = job id, row = JobRow.
const (
	JobsTable = "jobs"
	JobRow    = "job"
)

// Job states.
const (
	StateQueued   = "Queued"
	StateReceived = "Received"
)

// JobMessage is the body of a job queue message.
type JobMessage struct {
	Job           string `json:"job"`
	Group         string `json:"group"`
	Type          string `json:"type"`
	RecoveryPoint string `json:"recoveryPoint,omitempty"`
}

// DecodeJobMessage parses a job message; the error names the offending field.
func DecodeJobMessage(data []byte) (JobMessage, error) {
	var m JobMessage
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return m, fmt.Errorf("job message is not valid JSON of the job shape: %w", err)
	}
	if m.Job == "" {
		return m, errors.New("job message field job: missing")
	}
	if err := replication.ValidGroupName(m.Group); err != nil {
		return m, fmt.Errorf("job message field group: %w", err)
	}
	if m.Type == "" {
		return m, errors.New("job message field type: missing")
	}
	return m, nil
}

// Job is a job's row.
type Job struct {
	replication.Keys
	Group         string    `json:"Group"`
	Type          string    `json:"Type"`
	RecoveryPoint string    `json:"RecoveryPoint"`
	State         string    `json:"State"`
	CreatedAt     time.Time `json:"CreatedAt"`
	UpdatedAt     time.Time `json:"UpdatedAt"`
	Deliveries    int64     `json:"Deliveries"`
	MessageID     string    `json:"MessageID"`
	Error         string    `json:"Error,omitempty"`
}

// Function is the failover function.
type Function struct {
	State replication.StateStore
	Log   *slog.Logger
	Now   func() time.Time
}

// Invoke handles one job message.
func (f *Function) Invoke(ctx context.Context, req *funcproto.InvokeRequest) (*funcproto.InvokeResponse, error) {
	msg, err := funcproto.DecodeServiceBusMessage(req, Binding)
	if err != nil {
		return nil, &funcproto.BadInput{Reason: err.Error()}
	}
	body, err := DecodeJobMessage(msg.Body)
	if err != nil {
		return nil, &funcproto.BadInput{Reason: err.Error()}
	}
	if msg.SessionID != "" && msg.SessionID != body.Group {
		return nil, &funcproto.BadInput{Reason: fmt.Sprintf("job message for group %q arrived in session %q", body.Group, msg.SessionID)}
	}
	if f.State == nil {
		return nil, errors.New("failover: target state store is not configured (StandbyTargetStorage)")
	}
	now := f.Now().UTC()
	_, err = replication.Mutate(ctx, f.State, JobsTable, body.Job, JobRow, func(job *Job, found bool) error {
		if !found {
			*job = Job{Keys: replication.Keys{PartitionKey: body.Job, RowKey: JobRow}, Group: body.Group, Type: body.Type,
				RecoveryPoint: body.RecoveryPoint, CreatedAt: now}
		}
		job.State, job.UpdatedAt, job.Deliveries, job.MessageID = StateReceived, now, msg.DeliveryCount, msg.MessageID
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("recording job %s: %w", body.Job, err)
	}
	f.Log.Info("job message received", "job", body.Job, "group", body.Group, "type", body.Type, "delivery", msg.DeliveryCount)
	return &funcproto.InvokeResponse{Logs: []string{fmt.Sprintf("job %s (%s) received, delivery %d", body.Job, body.Type, msg.DeliveryCount)}}, nil
}
