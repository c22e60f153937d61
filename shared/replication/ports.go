package replication

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"sync"
	"time"

	"github.com/google/uuid"
)

// ETag is an opaque entity version used for optimistic concurrency. The empty ETag means "unconditional".
type ETag string

// ChangeEvent is one event on the change stream (a batch descriptor or a marker).
type ChangeEvent struct {
	Body       []byte
	Properties map[string]string
}

// ChangePublisher sends events to the change stream (Event Hubs in Azure, the embedded broker locally).
//
// Contract: all events of one Publish call share the partition key and land in one partition in the
// given order; the call returns only once the service has accepted them (durable). Delivery to
// consumers is at-least-once: a Publish that returned an error may still have been stored, so publishers
// must make their events idempotent (Standby's carry a per-group sequence number). An event larger than
// the service limit (1 MB) fails with ErrTooLarge and nothing of the call is sent.
type ChangePublisher interface {
	Publish(ctx context.Context, partitionKey string, events []ChangeEvent) error
	Close(ctx context.Context) error
}

// JobMessage is a message on the job queue. SessionID orders and serialises messages of one group;
// MessageID enables duplicate detection.
type JobMessage struct {
	MessageID  string
	SessionID  string
	Body       []byte
	Properties map[string]string
}

// JobSender sends messages to the job queue (Service Bus in Azure, the embedded broker locally).
//
// Contract: Send returns once the message is durably enqueued. A message is delivered to exactly one
// receiver at a time under a peek-lock; it is redelivered (delivery count + 1) when the receiver
// abandons it or the lock expires, and dead-lettered with a reason after the queue's MaxDeliveryCount.
// Schedule enqueues a message that stays invisible until at and returns a number with which
// CancelScheduled withdraws it (ErrNotFound once it has been enqueued or cancelled).
type JobSender interface {
	Send(ctx context.Context, msg JobMessage) error
	Schedule(ctx context.Context, msg JobMessage, at time.Time) (int64, error)
	CancelScheduled(ctx context.Context, sequence int64) error
	Close(ctx context.Context) error
}

// PageRange is a byte range [Offset, Offset+Length) of a page blob; both are multiples of PageSize.
type PageRange struct {
	Offset int64
	Length int64
}

// CheckPageRange refuses a range that is not page-aligned, or empty (ErrInvalid), as the service does.
func CheckPageRange(offset, length int64) error {
	if offset < 0 || length <= 0 || offset%PageSize != 0 || length%PageSize != 0 {
		return fmt.Errorf("range [%d, +%d) is not 512-byte aligned: %w", offset, length, ErrInvalid)
	}
	return nil
}

// End is the first byte after the range.
func (r PageRange) End() int64 { return r.Offset + r.Length }

// PageSize is the page blob alignment; MaxPageWrite the largest range one Put Page may carry.
const (
	PageSize     = 512
	MaxPageWrite = 4 << 20
	MaxDiskSize  = 8 << 40
)

// DiskRef names a page blob: a disk (or a disk copy) in a container of the page store's account.
type DiskRef struct {
	Container string
	Name      string
}

func (d DiskRef) String() string { return d.Container + "/" + d.Name }

// CopyState reports a server-side copy.
type CopyState struct {
	Status      string // "pending", "success", "failed", "aborted"
	Copied      int64
	Total       int64
	Description string
}

// PageStore is the target disks' storage: page blobs, their snapshots and server-side copies.
//
// Contract: offsets and lengths are multiples of PageSize and a write carries at most MaxPageWrite bytes
// (ErrInvalid otherwise, nothing written). Reads of never-written ranges return zeros. A snapshot is
// immutable and addressed by the string Snapshot returns. Missing disks or snapshots → ErrNotFound.
type PageStore interface {
	EnsureContainer(ctx context.Context, container string) error
	Create(ctx context.Context, disk DiskRef, size int64) error
	Size(ctx context.Context, disk DiskRef) (int64, error)
	Delete(ctx context.Context, disk DiskRef) error
	WritePages(ctx context.Context, disk DiskRef, offset int64, data []byte) error
	ClearPages(ctx context.Context, disk DiskRef, offset, length int64) error
	// ReadRange reads length bytes at offset of the disk, or of its snapshot when snapshot is not empty.
	ReadRange(ctx context.Context, disk DiskRef, snapshot string, offset, length int64) ([]byte, error)
	// AllocatedRanges lists the written ranges of the disk (or snapshot), in offset order, merged.
	AllocatedRanges(ctx context.Context, disk DiskRef, snapshot string) ([]PageRange, error)
	// ChangedRanges lists the ranges written or cleared between two snapshots of the disk, merged and in
	// order. It may over-report (Azurite returns every allocated range): callers that need precision
	// compare content.
	ChangedRanges(ctx context.Context, disk DiskRef, snapshot, prevSnapshot string) ([]PageRange, error)
	// Snapshot takes a snapshot of the disk, labelled with tag unless it is empty; TaggedSnapshots lists
	// the disk's snapshots with that label (apply finds the ones a crash left unrecorded this way).
	Snapshot(ctx context.Context, disk DiskRef, tag string) (string, error)
	TaggedSnapshots(ctx context.Context, disk DiskRef, tag string) ([]string, error)
	DeleteSnapshot(ctx context.Context, disk DiskRef, snapshot string) error
	// StartCopy begins a server-side copy of src's snapshot into a new page blob dst and returns at once;
	// poll CopyStatus until the status is no longer "pending".
	StartCopy(ctx context.Context, src DiskRef, snapshot string, dst DiskRef) error
	CopyStatus(ctx context.Context, dst DiskRef) (CopyState, error)
	// StartCopyFromURL begins a server-side copy of the page blob at srcURL (a managed disk's export:
	// a SAS URL) into a new page blob dst, the same way.
	StartCopyFromURL(ctx context.Context, srcURL string, dst DiskRef) error
	// URL is the disk's address, as a pageblob: source names it (reprotect replicates from it).
	URL(disk DiskRef) string
	// AcquireLease makes id the disk's writer for LeaseDuration (or renews it), breaking another
	// writer's lease: while a lease is active, writes and deletes must carry its id (WithLease) or fail
	// with ErrConflict, so a writer that was taken over is fenced from its next write on. BreakLease ends
	// a writer's lease at once (nothing to break is fine). Neither touches an infinite lease — a VM's on
	// a disk it has attached — they answer ErrConflict instead.
	AcquireLease(ctx context.Context, disk DiskRef, id string) error
	BreakLease(ctx context.Context, disk DiskRef) error
	// PutBlob writes a small document next to the disks (a machine definition), replacing any; GetBlob
	// reads it back (ErrNotFound when missing); Delete removes it.
	PutBlob(ctx context.Context, ref DiskRef, data []byte, contentType string) error
	GetBlob(ctx context.Context, ref DiskRef) ([]byte, error)
}

// MaxPayloadBytes bounds a stored batch: agents seal batches at a few MiB (at most 32 MiB of writes,
// their encoding and MAC); a larger blob is no agent's and is never read whole.
const MaxPayloadBytes = 40 << 20

// JournalStore keeps change-batch payloads in the cache storage account, one blob per group and sequence.
//
// Contract: Put writes a batch once: again with the same content it succeeds, with other content it
// is ErrConflict and the stored batch stays (SameBatchOrConflict); Get of a missing or deleted batch → ErrNotFound,
// of one larger than MaxPayloadBytes → ErrCorrupt (without reading it whole);
// Delete of a missing batch succeeds (deletion is idempotent).
type JournalStore interface {
	Put(ctx context.Context, group string, seq int64, payload []byte) error
	// Replace overwrites a stored batch unconditionally. Only StoreBatch calls it, for a stored batch
	// that does not verify under the group's stream key: a forger's, which apply never applies.
	Replace(ctx context.Context, group string, seq int64, payload []byte) error
	Get(ctx context.Context, group string, seq int64) ([]byte, error)
	Delete(ctx context.Context, group string, seq int64) error
	// List returns the sequences stored for the group, ascending.
	List(ctx context.Context, group string) ([]int64, error)
	// Quarantine keeps a payload that failed verification aside (never applied, kept for inspection).
	Quarantine(ctx context.Context, group string, seq int64, payload []byte, reason string) error
	// Prune deletes the group's batches up to throughSeq that were stored before olderThan, and
	// returns how many went.
	Prune(ctx context.Context, group string, throughSeq int64, olderThan time.Time) (int, error)
}

// SameBatchOrConflict is a journal's answer to a Put of payload where stored already is: nil for the
// same bytes (a repeat of the upload), ErrConflict otherwise. Batches are written once, so nothing
// that can write the journal replaces a batch a recovery may replay.
func SameBatchOrConflict(group string, seq int64, stored, payload []byte) error {
	if bytes.Equal(stored, payload) {
		return nil
	}
	return fmt.Errorf("%w: batch %d of %s is already stored with other content (%d bytes, this one %d): batches are written once, and another writer holds this sequence",
		ErrConflict, seq, group, len(stored), len(payload))
}

// StoreBatch stores the agent's sealed batch at its sequence, written once: a batch already there
// with the same bytes is this one; one that does not verify under key (a forger's, planted ahead of
// the agent — apply refuses it) is replaced; one that verifies but differs is the group's own earlier
// batch, which a recovery may replay, and stays: ErrConflict.
func StoreBatch(ctx context.Context, j JournalStore, key []byte, group string, seq int64, payload []byte) error {
	err := j.Put(ctx, group, seq, payload)
	if !errors.Is(err, ErrConflict) || key == nil {
		return err
	}
	stored, getErr := j.Get(ctx, group, seq)
	if getErr != nil {
		return fmt.Errorf("%w (and reading it: %v)", err, getErr)
	}
	if _, openErr := OpenPayload(key, group, seq, stored); openErr == nil {
		return err
	}
	return j.Replace(ctx, group, seq, payload)
}

// BatchBlobName is where a batch payload lives in the journal, and the name its descriptor points at:
// sequence numbers zero-padded so names sort in order.
func BatchBlobName(group string, seq int64) string { return fmt.Sprintf("%s/%020d.batch", group, seq) }

// Probe checks one dependency for the health endpoint.
type Probe struct {
	Name  string
	Check func(ctx context.Context) error // nil: the dependency is not configured
}

// ProbeResult is how one dependency answered: its error ("" reachable; redacted) and the time it took.
type ProbeResult struct {
	Name    string
	Err     string
	Latency time.Duration
}

// RunProbes checks every dependency at once, each bounded by ctx.
func RunProbes(ctx context.Context, probes []Probe) []ProbeResult {
	out := make([]ProbeResult, len(probes))
	var wg sync.WaitGroup
	for i, p := range probes {
		wg.Go(func() {
			start := time.Now()
			err := errors.New("not configured")
			if p.Check != nil {
				err = p.Check(ctx)
			}
			out[i] = ProbeResult{Name: p.Name, Latency: time.Since(start)}
			if err != nil {
				out[i].Err = Redact(err.Error())
			}
		})
	}
	wg.Wait()
	return out
}

// StateStore is the pipeline's state: Table storage in Azure and in Azurite alike.
//
// Entities are typed Go structs that embed Keys; fields must be JSON-encodable. Nested values (slices,
// maps, structs) are stored as JSON text in one property, which bounds them by the 64 KiB property limit.
//
// Contract: Insert of an existing key → ErrConflict; Update and Delete with a non-empty ETag that no
// longer matches → ErrConflict (someone else changed it: re-read and retry); missing entity → ErrNotFound.
type StateStore interface {
	EnsureTable(ctx context.Context, table string) error
	Get(ctx context.Context, table, partitionKey, rowKey string, into any) (ETag, error)
	Insert(ctx context.Context, table string, entity any) (ETag, error)
	Update(ctx context.Context, table string, entity any, ifMatch ETag) (ETag, error)
	Upsert(ctx context.Context, table string, entity any) (ETag, error)
	Delete(ctx context.Context, table, partitionKey, rowKey string, ifMatch ETag) error
	// Query visits the entities of a partition in row-key order; decode fills a typed struct.
	Query(ctx context.Context, table, partitionKey string, visit func(decode func(into any) error, etag ETag) error) error
	// ListRows visits, across partitions, the entities whose row key is rowKey (e.g. every group's state row).
	ListRows(ctx context.Context, table, rowKey string, visit func(decode func(into any) error, etag ETag) error) error
	// Transact writes to one partition all or nothing (Table storage's entity group transaction): at most
	// MaxTxOps writes, each entity once. A precondition that does not hold (an ETag that changed, a key
	// that exists for an insert, a missing entity for an update or delete) fails the whole with
	// ErrConflict or ErrNotFound, and nothing is written. (What the group row's split by writer needs
	// for the writes that move state and progress together.)
	Transact(ctx context.Context, table string, ops []TxOp) error
}

// TxOp is one write of a transaction: Entity (carrying its keys) for inserts, updates and upserts;
// Keys for deletes. IfMatch guards an update or a delete ("" for any version).
type TxOp struct {
	Kind    TxKind
	Entity  any
	Keys    Keys
	IfMatch ETag
}

// TxKind is what a transaction's write does.
type TxKind int

const (
	TxInsert TxKind = iota + 1
	TxUpdate
	TxUpsert
	TxDelete
)

// MaxTxOps is the most writes one transaction takes (Table storage's limit: 100 entities).
const MaxTxOps = 100

// CheckTx checks a transaction's shape from the keys of its writes, in order: 1 to MaxTxOps writes, one
// partition, each entity once (ErrInvalid otherwise). Every StateStore.Transact checks it first.
func CheckTx(keys []Keys) error {
	if len(keys) == 0 || len(keys) > MaxTxOps {
		return fmt.Errorf("%w: a transaction takes 1 to %d writes, not %d", ErrInvalid, MaxTxOps, len(keys))
	}
	seen := map[string]bool{}
	for _, k := range keys {
		if k.PartitionKey == "" || k.PartitionKey != keys[0].PartitionKey {
			return fmt.Errorf("%w: a transaction writes one partition", ErrInvalid)
		}
		if seen[k.RowKey] {
			return fmt.Errorf("%w: a transaction writes each entity once (%s twice)", ErrInvalid, k.RowKey)
		}
		seen[k.RowKey] = true
	}
	return nil
}

// TxPrecondition is why a write cannot be made against an entity that exists (with etag) or not — a
// key that exists for an insert, a missing entity or a changed ETag for an update or a delete — and
// nil when it can; at names the entity.
func TxPrecondition(op TxOp, exists bool, etag ETag, at string) error {
	switch {
	case op.Kind == TxInsert && exists:
		return fmt.Errorf("%s exists: %w", at, ErrConflict)
	case (op.Kind == TxUpdate || op.Kind == TxDelete) && !exists:
		return fmt.Errorf("%s: %w", at, ErrNotFound)
	case (op.Kind == TxUpdate || op.Kind == TxDelete) && op.IfMatch != "" && op.IfMatch != etag:
		return fmt.Errorf("%s changed: %w", at, ErrConflict)
	}
	return nil
}

// Keys are the Table storage keys every entity embeds.
type Keys struct {
	PartitionKey string
	RowKey       string
}

// QueryAll reads a whole partition into typed values with their ETags.
func QueryAll[T any](ctx context.Context, store StateStore, table, partitionKey string) ([]T, []ETag, error) {
	var items []T
	var etags []ETag
	err := store.Query(ctx, table, partitionKey, func(decode func(any) error, etag ETag) error {
		var item T
		if err := decode(&item); err != nil {
			return err
		}
		items = append(items, item)
		etags = append(etags, etag)
		return nil
	})
	return items, etags, err
}

// maxRaces is how many times an optimistic write is tried against other writers.
const maxRaces = 32

// backOff waits before the attempt-th try of an optimistic write (none before the first): a random,
// growing moment, so that contenders that lost a race spread out.
func backOff(ctx context.Context, attempt int) error {
	if attempt == 0 {
		return nil
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Duration(mrand.Int64N(int64(min(attempt*attempt, 100))+1)) * time.Millisecond):
		return nil
	}
}

// Mutate is an optimistic read-modify-write of one entity: it reads the entity (found=false and a zero
// value when missing), lets change edit it, and writes it back guarded by the ETag it read (inserting
// when it was missing), retrying from the read when another writer got in between. change may return
// ErrUnchanged to write nothing. It returns the entity as written.
func Mutate[T any](ctx context.Context, store StateStore, table, partitionKey, rowKey string, change func(e *T, found bool) error) (T, error) {
	var e T
	for attempt := 0; attempt < maxRaces; attempt++ {
		if err := backOff(ctx, attempt); err != nil {
			return e, err
		}
		var zero T
		e = zero
		etag, err := store.Get(ctx, table, partitionKey, rowKey, &e)
		found := err == nil
		if err != nil && !errors.Is(err, ErrNotFound) {
			return e, err
		}
		if err := change(&e, found); err != nil {
			if errors.Is(err, ErrUnchanged) {
				return e, nil
			}
			return e, err
		}
		if found {
			_, err = store.Update(ctx, table, e, etag)
		} else {
			_, err = store.Insert(ctx, table, e)
		}
		if !errors.Is(err, ErrConflict) {
			return e, err
		}
	}
	return e, fmt.Errorf("%s/%s/%s: too many concurrent changes: %w", table, partitionKey, rowKey, ErrConflict)
}

// ErrUnchanged tells Mutate that the change needs no write.
var ErrUnchanged = errors.New("unchanged")

// LeaseDuration is how long a disk lease lasts unless renewed (the longest finite blob lease).
const LeaseDuration = 60 * time.Second

type leaseKey struct{}

// WithLease makes the page store's writes under ctx carry the lease id.
func WithLease(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, leaseKey{}, id)
}

// LeaseOf is the lease id the context's writes carry ("" for none).
func LeaseOf(ctx context.Context) string {
	id, _ := ctx.Value(leaseKey{}).(string)
	return id
}

// NewLeaseID returns a fresh lease id (a random UUID, the form blob leases take).
func NewLeaseID() string { return uuid.NewString() }
