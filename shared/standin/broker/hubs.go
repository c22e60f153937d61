package broker

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/standby-dr/standby/shared/replication"
)

// Event is an event to publish.
type Event struct {
	Body       []byte
	Properties map[string]string
}

// StoredEvent is an event as a consumer sees it.
type StoredEvent struct {
	Partition      int
	SequenceNumber int64
	Offset         int64
	EnqueuedTime   time.Time
	PartitionKey   string
	Body           []byte
	Properties     map[string]string
}

// PartitionFor maps a partition key to a partition with a stable hash (FNV-1a), so one key always lands
// in one partition and its events keep their order. An empty key is spread by the caller.
func PartitionFor(key string, partitions int) int {
	h := fnv.New32a()
	h.Write([]byte(key))
	return int(h.Sum32() % uint32(partitions))
}

// PartitionCount returns the hub's partition count.
func (b *Broker) PartitionCount(ctx context.Context, hub string) (int, error) {
	var n int
	err := b.db.QueryRowContext(ctx, `SELECT partitions FROM hubs WHERE name=?`, hub).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("event hub %q: %w", hub, errUnknownEntity)
	}
	return n, err
}

func eventSize(e Event) int {
	n := len(e.Body)
	for k, v := range e.Properties {
		n += len(k) + len(v)
	}
	return n
}

// Publish appends events to one partition of the hub: the partition the key hashes to, in the given
// order, atomically. Like an Event Hubs send, the whole call is refused when an event or the send
// exceeds MaxEventBytes.
func (b *Broker) Publish(ctx context.Context, hub, partitionKey string, events []Event) ([]StoredEvent, error) {
	total := 0
	for i, e := range events {
		size := eventSize(e)
		if size > MaxEventBytes {
			return nil, fmt.Errorf("event %d of %d bytes exceeds the %d-byte event limit: %w", i, size, MaxEventBytes, replication.ErrTooLarge)
		}
		total += size
	}
	if total > MaxEventBytes {
		return nil, fmt.Errorf("send of %d bytes exceeds the %d-byte limit: %w", total, MaxEventBytes, replication.ErrTooLarge)
	}
	partitions, err := b.PartitionCount(ctx, hub)
	if err != nil {
		return nil, err
	}
	partition := PartitionFor(partitionKey, partitions)
	stored := make([]StoredEvent, 0, len(events))
	err = b.tx(ctx, func(tx *sql.Tx) error {
		var seq, offset int64
		if err := tx.QueryRowContext(ctx, `SELECT next_seq, next_offset FROM hub_partitions WHERE hub=? AND partition=?`, hub, partition).Scan(&seq, &offset); err != nil {
			return err
		}
		now := b.now()
		for _, e := range events {
			if _, err := tx.ExecContext(ctx, `INSERT INTO events(hub, partition, seq, offset, enqueued_ms, partition_key, body, props) VALUES(?,?,?,?,?,?,?,?)`,
				hub, partition, seq, offset, now.UnixMilli(), partitionKey, e.Body, encodeProps(e.Properties)); err != nil {
				return err
			}
			stored = append(stored, StoredEvent{Partition: partition, SequenceNumber: seq, Offset: offset, EnqueuedTime: time.UnixMilli(now.UnixMilli()).UTC(),
				PartitionKey: partitionKey, Body: e.Body, Properties: e.Properties})
			seq++
			offset += int64(len(e.Body))
		}
		_, err := tx.ExecContext(ctx, `UPDATE hub_partitions SET next_seq=?, next_offset=? WHERE hub=? AND partition=?`, seq, offset, hub, partition)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("publishing to %s/%d: %w", hub, partition, err)
	}
	return stored, nil
}

// ReadEvents returns up to max events of a partition with sequence numbers above afterSeq (-1 reads from
// the oldest retained event), waiting up to wait for the first one.
func (b *Broker) ReadEvents(ctx context.Context, hub string, partition int, afterSeq int64, max int, wait time.Duration) ([]StoredEvent, error) {
	return poll(ctx, wait, func() ([]StoredEvent, error) {
		rows, err := b.db.QueryContext(ctx, `SELECT seq, offset, enqueued_ms, partition_key, body, props FROM events
			WHERE hub=? AND partition=? AND seq>? ORDER BY seq LIMIT ?`, hub, partition, afterSeq, max)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		var out []StoredEvent
		for rows.Next() {
			e := StoredEvent{Partition: partition}
			var enq int64
			var props string
			if err := rows.Scan(&e.SequenceNumber, &e.Offset, &enq, &e.PartitionKey, &e.Body, &props); err != nil {
				return nil, err
			}
			e.EnqueuedTime = time.UnixMilli(enq).UTC()
			e.Properties = decodeProps(props)
			out = append(out, e)
		}
		return out, rows.Err()
	})
}

// Checkpoint records a consumer group's position in a partition: the last event it has processed.
func (b *Broker) Checkpoint(ctx context.Context, hub, consumerGroup string, partition int, seq, offset int64) error {
	return b.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO checkpoints(hub, consumer_group, partition, seq, offset, updated_ms) VALUES(?,?,?,?,?,?)
			ON CONFLICT(hub, consumer_group, partition) DO UPDATE SET seq=excluded.seq, offset=excluded.offset, updated_ms=excluded.updated_ms`,
			hub, consumerGroup, partition, seq, offset, b.nowMs())
		return err
	})
}

// LoadCheckpoint returns the last checkpointed sequence number, or ok=false when there is none.
func (b *Broker) LoadCheckpoint(ctx context.Context, hub, consumerGroup string, partition int) (seq int64, ok bool, err error) {
	err = b.db.QueryRowContext(ctx, `SELECT seq FROM checkpoints WHERE hub=? AND consumer_group=? AND partition=?`, hub, consumerGroup, partition).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return -1, false, nil
	}
	return seq, err == nil, err
}

// PruneEvents deletes the hub's events older than its retention and returns how many went.
func (b *Broker) PruneEvents(ctx context.Context, hub string) (int64, error) {
	var n int64
	err := b.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM events WHERE hub=? AND enqueued_ms < ? - (SELECT retention_ms FROM hubs WHERE name=?)`, hub, b.nowMs(), hub)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

// HubNames lists the declared hubs.
func (b *Broker) HubNames(ctx context.Context) ([]string, error) {
	return b.names(ctx, `SELECT name FROM hubs ORDER BY name`)
}

// QueueNames lists the declared queues.
func (b *Broker) QueueNames(ctx context.Context) ([]string, error) {
	return b.names(ctx, `SELECT name FROM queues ORDER BY name`)
}

func (b *Broker) names(ctx context.Context, query string) ([]string, error) {
	rows, err := b.db.QueryContext(ctx, query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
