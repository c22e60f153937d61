// Package replication holds Standby's domain: the types and rules of replication, recovery points and
// failover jobs, and the small interfaces (ports) through which the domain reaches storage and messaging.
// It imports no Azure SDK: adapters in sibling packages satisfy the ports and translate their errors into
// the sentinel errors below, so the domain can branch on them with errors.Is.
package replication

import "errors"

var (
	// ErrNotFound: the entity, blob, snapshot or message does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: an optimistic-concurrency precondition failed (ETag mismatch) or the thing already exists.
	ErrConflict = errors.New("conflict")
	// ErrTooLarge: a payload exceeds a service limit (1 MB event, 4 MiB page write, 64 KiB table property).
	ErrTooLarge = errors.New("too large")
	// ErrInvalid: the request breaks a rule of the service (misaligned range, bad name).
	ErrInvalid = errors.New("invalid request")
	// ErrUnavailable: the dependency could not be reached or answered with a transient failure (5xx,
	// throttling) after the SDK's own retries. Safe to retry later.
	ErrUnavailable = errors.New("unavailable")
	// ErrLockLost: a peek-lock or session lock expired or was taken by another receiver.
	ErrLockLost = errors.New("lock lost")
)

var (
	// ErrState: the request conflicts with the group's (or a job's) state; the message says why.
	ErrState = errors.New("conflicts with the state")
	// ErrNotConfigured: a dependency the request needs is not configured in this deployment.
	ErrNotConfigured = errors.New("not configured")
)
