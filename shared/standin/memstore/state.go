package memstore

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/standby-dr/standby/shared/replication"
)

// State is an in-memory state store: entities kept as the JSON the struct encodes to.
type State struct {
	mu     sync.Mutex
	tables map[string]map[string]map[string]entity // table → partition → row
	etag   int
}

type entity struct {
	data []byte
	etag replication.ETag
}

// NewState returns an empty state store.
func NewState() *State { return &State{tables: map[string]map[string]map[string]entity{}} }

func (s *State) EnsureTable(_ context.Context, table string) error { return nil }

func keysOf(e any) (string, string, []byte, error) {
	data, err := json.Marshal(e)
	if err != nil {
		return "", "", nil, fmt.Errorf("%w: %v", replication.ErrInvalid, err)
	}
	var k replication.Keys
	json.Unmarshal(data, &k)
	if k.PartitionKey == "" {
		return "", "", nil, fmt.Errorf("%w: entity %T has no PartitionKey", replication.ErrInvalid, e)
	}
	if strings.ContainsAny(k.PartitionKey+k.RowKey, "/\\#?") {
		return "", "", nil, fmt.Errorf("%w: key with a character Table storage forbids", replication.ErrInvalid)
	}
	return k.PartitionKey, k.RowKey, data, nil
}

func (s *State) nextETag() replication.ETag {
	s.etag++
	return replication.ETag("W/\"" + strconv.Itoa(s.etag) + "\"")
}

func (s *State) row(table, pk string) map[string]entity {
	t, ok := s.tables[table]
	if !ok {
		t = map[string]map[string]entity{}
		s.tables[table] = t
	}
	p, ok := t[pk]
	if !ok {
		p = map[string]entity{}
		t[pk] = p
	}
	return p
}

func (s *State) Get(_ context.Context, table, pk, rk string, into any) (replication.ETag, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.row(table, pk)[rk]
	if !ok {
		return "", fmt.Errorf("%s/%s/%s: %w", table, pk, rk, replication.ErrNotFound)
	}
	return e.etag, json.Unmarshal(e.data, into)
}

func (s *State) write(table string, e any, mode string, ifMatch replication.ETag) (replication.ETag, error) {
	pk, rk, data, err := keysOf(e)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rows := s.row(table, pk)
	old, exists := rows[rk]
	switch {
	case mode == "insert" && exists:
		return "", fmt.Errorf("%s/%s/%s exists: %w", table, pk, rk, replication.ErrConflict)
	case mode == "update" && !exists:
		return "", fmt.Errorf("%s/%s/%s: %w", table, pk, rk, replication.ErrNotFound)
	case mode == "update" && ifMatch != "" && ifMatch != old.etag:
		return "", fmt.Errorf("%s/%s/%s changed: %w", table, pk, rk, replication.ErrConflict)
	}
	etag := s.nextETag()
	rows[rk] = entity{data: data, etag: etag}
	return etag, nil
}

func (s *State) Insert(_ context.Context, table string, e any) (replication.ETag, error) {
	return s.write(table, e, "insert", "")
}

func (s *State) Update(_ context.Context, table string, e any, ifMatch replication.ETag) (replication.ETag, error) {
	return s.write(table, e, "update", ifMatch)
}

func (s *State) Upsert(_ context.Context, table string, e any) (replication.ETag, error) {
	return s.write(table, e, "upsert", "")
}

func (s *State) Delete(_ context.Context, table, pk, rk string, ifMatch replication.ETag) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	rows := s.row(table, pk)
	old, ok := rows[rk]
	if !ok {
		return fmt.Errorf("%s/%s/%s: %w", table, pk, rk, replication.ErrNotFound)
	}
	if ifMatch != "" && ifMatch != old.etag {
		return fmt.Errorf("%s/%s/%s changed: %w", table, pk, rk, replication.ErrConflict)
	}
	delete(rows, rk)
	return nil
}

func (s *State) Query(ctx context.Context, table, pk string, visit func(decode func(any) error, etag replication.ETag) error) error {
	s.mu.Lock()
	rows := s.row(table, pk)
	keys := slices.Sorted(maps.Keys(rows))
	snapshot := make([]entity, len(keys))
	for i, k := range keys {
		snapshot[i] = rows[k]
	}
	s.mu.Unlock()
	for _, e := range snapshot {
		if err := visit(func(into any) error { return json.Unmarshal(e.data, into) }, e.etag); err != nil {
			return err
		}
	}
	return nil
}

func (s *State) ListRows(ctx context.Context, table, rk string, visit func(decode func(any) error, etag replication.ETag) error) error {
	s.mu.Lock()
	var found []entity
	pks := make([]string, 0)
	for pk := range s.tables[table] {
		pks = append(pks, pk)
	}
	sort.Strings(pks)
	for _, pk := range pks {
		if e, ok := s.tables[table][pk][rk]; ok {
			found = append(found, e)
		}
	}
	s.mu.Unlock()
	for _, e := range found {
		if err := visit(func(into any) error { return json.Unmarshal(e.data, into) }, e.etag); err != nil {
			return err
		}
	}
	return nil
}
