// Package broker is the embedded broker that stands in for Event Hubs and Service Bus on a machine
// without Docker or Azure: one SQLite file (WAL, pure Go), safe to open from several processes at once
// (agent, handler, devhost, tests). It mirrors the semantics the pipeline relies on:
//
//   - hubs: N partitions, partition chosen from the partition key by a stable hash, per-partition
//     sequence numbers from 0 and byte offsets, enqueued time, a 1 MB cap per event and per send,
//     consumer-group checkpoints, retention pruning;
//   - queues: peek-lock with lock token and lock duration, renew, complete, abandon, dead-letter after
//     MaxDeliveryCount (or on request) with reason and description, a readable dead-letter queue,
//     scheduled messages and their cancellation, sessions (one receiver holds a session, FIFO within
//     it, other sessions in parallel), duplicate detection by message id within a window.
//
// Entities come from a config file shaped like the official emulators' Config.json (see Config). The
// connection settings that select it (UseEmbeddedBroker=true;Path=…) are read by shared/azure/azconn.
package broker

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"github.com/standby-dr/standby/shared/azure/azconn"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/standby-dr/standby/shared/replication"
	_ "modernc.org/sqlite"
)

// MaxEventBytes is Event Hubs' cap on one event and on one send (Standard tier): 1 MB.
const MaxEventBytes = 1 << 20

// Broker is a handle on the broker file. It is safe for concurrent use, also across processes.
type Broker struct {
	db  *sql.DB
	now func() time.Time
}

const schema = `
CREATE TABLE IF NOT EXISTS hubs(name TEXT PRIMARY KEY, partitions INTEGER NOT NULL, retention_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS hub_partitions(hub TEXT NOT NULL, partition INTEGER NOT NULL, next_seq INTEGER NOT NULL,
  next_offset INTEGER NOT NULL, PRIMARY KEY(hub, partition));
CREATE TABLE IF NOT EXISTS events(hub TEXT NOT NULL, partition INTEGER NOT NULL, seq INTEGER NOT NULL, offset INTEGER NOT NULL,
  enqueued_ms INTEGER NOT NULL, partition_key TEXT NOT NULL, body BLOB NOT NULL, props TEXT NOT NULL,
  PRIMARY KEY(hub, partition, seq));
CREATE TABLE IF NOT EXISTS checkpoints(hub TEXT NOT NULL, consumer_group TEXT NOT NULL, partition INTEGER NOT NULL,
  seq INTEGER NOT NULL, offset INTEGER NOT NULL, updated_ms INTEGER NOT NULL, PRIMARY KEY(hub, consumer_group, partition));
CREATE TABLE IF NOT EXISTS queues(name TEXT PRIMARY KEY, requires_session INTEGER NOT NULL, lock_ms INTEGER NOT NULL,
  max_delivery INTEGER NOT NULL, dedup_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS messages(seq INTEGER PRIMARY KEY AUTOINCREMENT, queue TEXT NOT NULL, message_id TEXT NOT NULL,
  session_id TEXT NOT NULL, body BLOB NOT NULL, props TEXT NOT NULL, enqueued_ms INTEGER NOT NULL,
  available_ms INTEGER NOT NULL, state TEXT NOT NULL, lock_token TEXT, locked_until_ms INTEGER NOT NULL DEFAULT 0,
  delivery_count INTEGER NOT NULL DEFAULT 0, dl_reason TEXT NOT NULL DEFAULT '', dl_description TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS messages_by_queue ON messages(queue, state, session_id, seq);
CREATE UNIQUE INDEX IF NOT EXISTS messages_by_token ON messages(lock_token);
CREATE TABLE IF NOT EXISTS session_locks(queue TEXT NOT NULL, session_id TEXT NOT NULL, token TEXT NOT NULL,
  locked_until_ms INTEGER NOT NULL, PRIMARY KEY(queue, session_id));
CREATE TABLE IF NOT EXISTS dedup(queue TEXT NOT NULL, message_id TEXT NOT NULL, at_ms INTEGER NOT NULL, PRIMARY KEY(queue, message_id));
`

// Open opens (creating when missing) the broker file at path.
func Open(path string) (*Broker, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("embedded broker: %w", err)
	}
	// _txlock=immediate takes the write lock at BEGIN, so concurrent writers queue on busy_timeout
	// instead of failing with SQLITE_BUSY when a read transaction tries to upgrade.
	dsn := "file:" + path + "?_pragma=busy_timeout(30000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("embedded broker %s: %w", path, err)
	}
	db.SetMaxOpenConns(4)
	b := &Broker{db: db, now: time.Now}
	if err := b.tx(context.Background(), func(tx *sql.Tx) error {
		_, err := tx.Exec(schema)
		return err
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("embedded broker %s: creating schema: %w", path, err)
	}
	return b, nil
}

// OpenConnection opens the broker a connection setting value names.
func OpenConnection(value string) (*Broker, error) {
	path, err := azconn.BrokerPath(value)
	if err != nil {
		return nil, err
	}
	return Open(path)
}

// Close releases the file.
func (b *Broker) Close() error { return b.db.Close() }

// SetClock replaces the clock (tests of lock expiry and scheduling).
func (b *Broker) SetClock(now func() time.Time) { b.now = now }

func (b *Broker) nowMs() int64 { return b.now().UnixMilli() }

func (b *Broker) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// Config declares the broker's entities, like the Event Hubs and Service Bus emulators' Config.json.
type Config struct {
	EventHubs []HubConfig   `json:"eventHubs"`
	Queues    []QueueConfig `json:"queues"`
}

// HubConfig declares an event hub.
type HubConfig struct {
	Name           string `json:"name"`
	PartitionCount int    `json:"partitionCount"`
	RetentionHours int    `json:"retentionHours"`
}

// QueueConfig declares a queue.
type QueueConfig struct {
	Name                            string `json:"name"`
	RequiresSession                 bool   `json:"requiresSession"`
	LockDurationSeconds             int    `json:"lockDurationSeconds"`
	MaxDeliveryCount                int    `json:"maxDeliveryCount"`
	DuplicateDetectionWindowSeconds int    `json:"duplicateDetectionWindowSeconds"`
}

// LoadConfig reads and validates a config file; errors name the file and the field.
func LoadConfig(path string) (Config, error) {
	var cfg Config
	data, err := os.ReadFile(path)
	if err != nil {
		return cfg, err
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return cfg, fmt.Errorf("%s: %w", path, err)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// Validate checks the entity declarations and fills defaults (Service Bus's: lock 60 s, 10 deliveries).
func (c *Config) Validate() error {
	seen := map[string]bool{}
	for i := range c.EventHubs {
		h := &c.EventHubs[i]
		if h.Name == "" || seen["hub:"+h.Name] {
			return fmt.Errorf("eventHubs[%d].name: empty or duplicate %q", i, h.Name)
		}
		seen["hub:"+h.Name] = true
		if h.PartitionCount < 1 || h.PartitionCount > 32 {
			return fmt.Errorf("eventHubs[%d].partitionCount: %d is outside 1..32", i, h.PartitionCount)
		}
		if h.RetentionHours == 0 {
			h.RetentionHours = 24
		}
		if h.RetentionHours < 1 || h.RetentionHours > 168 {
			return fmt.Errorf("eventHubs[%d].retentionHours: %d is outside 1..168", i, h.RetentionHours)
		}
	}
	for i := range c.Queues {
		q := &c.Queues[i]
		if q.Name == "" || seen["queue:"+q.Name] {
			return fmt.Errorf("queues[%d].name: empty or duplicate %q", i, q.Name)
		}
		seen["queue:"+q.Name] = true
		if q.LockDurationSeconds == 0 {
			q.LockDurationSeconds = 60
		}
		if q.MaxDeliveryCount == 0 {
			q.MaxDeliveryCount = 10
		}
		if q.LockDurationSeconds < 1 || q.LockDurationSeconds > 300 {
			return fmt.Errorf("queues[%d].lockDurationSeconds: %d is outside 1..300", i, q.LockDurationSeconds)
		}
		if q.MaxDeliveryCount < 1 {
			return fmt.Errorf("queues[%d].maxDeliveryCount: %d must be at least 1", i, q.MaxDeliveryCount)
		}
		if q.DuplicateDetectionWindowSeconds < 0 {
			return fmt.Errorf("queues[%d].duplicateDetectionWindowSeconds: must not be negative", i)
		}
	}
	return nil
}

// Apply creates or updates the declared entities. A hub's partition count cannot shrink.
func (b *Broker) Apply(ctx context.Context, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	return b.tx(ctx, func(tx *sql.Tx) error {
		for _, h := range cfg.EventHubs {
			var existing int
			err := tx.QueryRowContext(ctx, `SELECT partitions FROM hubs WHERE name=?`, h.Name).Scan(&existing)
			if err == nil && existing > h.PartitionCount {
				return fmt.Errorf("hub %s has %d partitions; the count cannot shrink to %d", h.Name, existing, h.PartitionCount)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO hubs(name, partitions, retention_ms) VALUES(?,?,?)
				ON CONFLICT(name) DO UPDATE SET partitions=excluded.partitions, retention_ms=excluded.retention_ms`,
				h.Name, h.PartitionCount, int64(h.RetentionHours)*3600_000); err != nil {
				return err
			}
			for p := 0; p < h.PartitionCount; p++ {
				if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO hub_partitions(hub, partition, next_seq, next_offset) VALUES(?,?,0,0)`, h.Name, p); err != nil {
					return err
				}
			}
		}
		for _, q := range cfg.Queues {
			if _, err := tx.ExecContext(ctx, `INSERT INTO queues(name, requires_session, lock_ms, max_delivery, dedup_ms) VALUES(?,?,?,?,?)
				ON CONFLICT(name) DO UPDATE SET requires_session=excluded.requires_session, lock_ms=excluded.lock_ms,
				max_delivery=excluded.max_delivery, dedup_ms=excluded.dedup_ms`,
				q.Name, q.RequiresSession, int64(q.LockDurationSeconds)*1000, q.MaxDeliveryCount, int64(q.DuplicateDetectionWindowSeconds)*1000); err != nil {
				return err
			}
		}
		return nil
	})
}

func newToken() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func encodeProps(p map[string]string) string {
	if len(p) == 0 {
		return "{}"
	}
	data, _ := json.Marshal(p)
	return string(data)
}

func decodeProps(s string) map[string]string {
	var p map[string]string
	json.Unmarshal([]byte(s), &p)
	return p
}

// poll runs try until it yields something, wait elapses or ctx ends. Cross-process notification would
// need more than SQLite offers, so receivers poll with a short, growing interval.
func poll[T any](ctx context.Context, wait time.Duration, try func() ([]T, error)) ([]T, error) {
	deadline := time.Now().Add(wait)
	interval := 5 * time.Millisecond
	for {
		items, err := try()
		if err != nil || len(items) > 0 || time.Now().After(deadline) {
			return items, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(interval):
		}
		if interval < 100*time.Millisecond {
			interval *= 2
		}
	}
}

var errUnknownEntity = fmt.Errorf("%w: no such entity", replication.ErrNotFound)
