// Package memstore holds in-memory implementations of the storage ports (PageStore, StateStore,
// JournalStore) and the broker ports (ChangePublisher: Hub, JobSender: Queue), so the domain runs whole
// in one test process. They pass the Azure adapters' contract suites (shared/storetest, shared/brokertest).
package memstore

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/standby-dr/standby/shared/replication"
)

// Pages is an in-memory page store. Disks keep 512-byte pages in a map, so a sparse 8 TiB disk costs
// only what was written.
type Pages struct {
	mu         sync.Mutex
	containers map[string]bool
	disks      map[string]*disk // by DiskRef.String()
	docs       map[string][]byte
	snapSeq    int
}

type disk struct {
	size  int64
	pages map[int64][]byte
	snaps map[string]map[int64][]byte
	tags  map[string]string // snapshot → tag
	copy  *replication.CopyState
	// lease is the active writer's lease id until leaseEnd.
	lease    string
	leaseEnd time.Time
}

// fenced says why a write or delete under ctx may not touch the disk (a lease it does not carry, or
// carries one the disk has not got), as blob storage answers it.
func (dk *disk) fenced(ctx context.Context, d replication.DiskRef) error {
	held := dk.lease != "" && time.Now().Before(dk.leaseEnd)
	switch id := replication.LeaseOf(ctx); {
	case held && id != dk.lease:
		return fmt.Errorf("%s is leased by another writer: %w", d, replication.ErrConflict)
	case !held && id != "":
		return fmt.Errorf("%s has no active lease for %s: %w", d, id, replication.ErrConflict)
	}
	return nil
}

func (p *Pages) AcquireLease(_ context.Context, d replication.DiskRef, id string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	dk, err := p.get(d)
	if err != nil {
		return err
	}
	dk.lease, dk.leaseEnd = id, time.Now().Add(replication.LeaseDuration)
	return nil
}

func (p *Pages) BreakLease(_ context.Context, d replication.DiskRef) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if dk, ok := p.disks[d.String()]; ok {
		dk.lease = ""
	}
	return nil
}

// NewPages returns an empty page store.
func NewPages() *Pages {
	return &Pages{containers: map[string]bool{}, disks: map[string]*disk{}}
}

func (p *Pages) get(d replication.DiskRef) (*disk, error) {
	dk, ok := p.disks[d.String()]
	if !ok {
		return nil, fmt.Errorf("disk %s: %w", d, replication.ErrNotFound)
	}
	return dk, nil
}

func checkRange(offset, length int64) error {
	if offset < 0 || length <= 0 || offset%replication.PageSize != 0 || length%replication.PageSize != 0 {
		return fmt.Errorf("range [%d, +%d) is not 512-byte aligned: %w", offset, length, replication.ErrInvalid)
	}
	return nil
}

func (p *Pages) EnsureContainer(_ context.Context, c string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.containers[c] = true
	return nil
}

func (p *Pages) Create(_ context.Context, d replication.DiskRef, size int64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if size <= 0 || size%replication.PageSize != 0 || size > replication.MaxDiskSize {
		return fmt.Errorf("disk %s: size %d: %w", d, size, replication.ErrInvalid)
	}
	if !p.containers[d.Container] {
		return fmt.Errorf("container %s: %w", d.Container, replication.ErrNotFound)
	}
	if _, ok := p.disks[d.String()]; ok {
		return fmt.Errorf("disk %s exists: %w", d, replication.ErrConflict)
	}
	p.disks[d.String()] = &disk{size: size, pages: map[int64][]byte{}, snaps: map[string]map[int64][]byte{}}
	return nil
}

func (p *Pages) Size(_ context.Context, d replication.DiskRef) (int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	dk, err := p.get(d)
	if err != nil {
		return 0, err
	}
	return dk.size, nil
}

func (p *Pages) Delete(ctx context.Context, d replication.DiskRef) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if dk, ok := p.disks[d.String()]; ok {
		if err := dk.fenced(ctx, d); err != nil {
			return err
		}
	}
	delete(p.disks, d.String())
	delete(p.docs, d.String())
	return nil
}

func (p *Pages) WritePages(ctx context.Context, d replication.DiskRef, offset int64, data []byte) error {
	if err := checkRange(offset, int64(len(data))); err != nil {
		return err
	}
	if len(data) > replication.MaxPageWrite {
		return fmt.Errorf("write of %d bytes exceeds 4 MiB: %w", len(data), replication.ErrInvalid)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	dk, err := p.get(d)
	if err != nil {
		return err
	}
	if err := dk.fenced(ctx, d); err != nil {
		return err
	}
	if offset+int64(len(data)) > dk.size {
		return fmt.Errorf("write past the end of %s: %w", d, replication.ErrInvalid)
	}
	for i := int64(0); i < int64(len(data)); i += replication.PageSize {
		dk.pages[offset+i] = append([]byte(nil), data[i:i+replication.PageSize]...)
	}
	return nil
}

func (p *Pages) ClearPages(ctx context.Context, d replication.DiskRef, offset, length int64) error {
	if err := checkRange(offset, length); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	dk, err := p.get(d)
	if err != nil {
		return err
	}
	if err := dk.fenced(ctx, d); err != nil {
		return err
	}
	for i := int64(0); i < length; i += replication.PageSize {
		delete(dk.pages, offset+i)
	}
	return nil
}

func (p *Pages) pagesOf(d replication.DiskRef, snapshot string) (*disk, map[int64][]byte, error) {
	dk, err := p.get(d)
	if err != nil {
		return nil, nil, err
	}
	if snapshot == "" {
		return dk, dk.pages, nil
	}
	pages, ok := dk.snaps[snapshot]
	if !ok {
		return nil, nil, fmt.Errorf("snapshot %s of %s: %w", snapshot, d, replication.ErrNotFound)
	}
	return dk, pages, nil
}

func (p *Pages) ReadRange(_ context.Context, d replication.DiskRef, snapshot string, offset, length int64) ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	dk, pages, err := p.pagesOf(d, snapshot)
	if err != nil {
		return nil, err
	}
	if offset < 0 || length < 0 || offset+length > dk.size {
		return nil, fmt.Errorf("range [%d, +%d) outside %s: %w", offset, length, d, replication.ErrInvalid)
	}
	out := make([]byte, length)
	for i := int64(0); i < length; {
		page := (offset + i) / replication.PageSize * replication.PageSize
		within := offset + i - page
		n := min(replication.PageSize-within, length-i)
		if data, ok := pages[page]; ok {
			copy(out[i:i+n], data[within:within+n])
		}
		i += n
	}
	return out, nil
}

func (p *Pages) AllocatedRanges(_ context.Context, d replication.DiskRef, snapshot string) ([]replication.PageRange, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, pages, err := p.pagesOf(d, snapshot)
	if err != nil {
		return nil, err
	}
	offsets := make([]int64, 0, len(pages))
	for off := range pages {
		offsets = append(offsets, off)
	}
	sort.Slice(offsets, func(i, j int) bool { return offsets[i] < offsets[j] })
	var out []replication.PageRange
	for _, off := range offsets {
		if n := len(out); n > 0 && out[n-1].End() == off {
			out[n-1].Length += replication.PageSize
			continue
		}
		out = append(out, replication.PageRange{Offset: off, Length: replication.PageSize})
	}
	return out, nil
}

func (p *Pages) ChangedRanges(_ context.Context, d replication.DiskRef, snapshot, prev string) ([]replication.PageRange, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, now, err := p.pagesOf(d, snapshot)
	if err != nil {
		return nil, err
	}
	_, before, err := p.pagesOf(d, prev)
	if err != nil {
		return nil, err
	}
	var changed []replication.PageRange
	for off, data := range now {
		if old, ok := before[off]; !ok || string(old) != string(data) {
			changed = append(changed, replication.PageRange{Offset: off, Length: replication.PageSize})
		}
	}
	for off := range before {
		if _, ok := now[off]; !ok {
			changed = append(changed, replication.PageRange{Offset: off, Length: replication.PageSize})
		}
	}
	return replication.MergeRanges(changed), nil
}

func (p *Pages) Snapshot(_ context.Context, d replication.DiskRef, tag string) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	dk, err := p.get(d)
	if err != nil {
		return "", err
	}
	p.snapSeq++
	id := fmt.Sprintf("snap-%06d", p.snapSeq)
	snap := make(map[int64][]byte, len(dk.pages))
	for k, v := range dk.pages {
		snap[k] = v // pages are never modified in place, so sharing them is safe
	}
	dk.snaps[id] = snap
	if tag != "" {
		if dk.tags == nil {
			dk.tags = map[string]string{}
		}
		dk.tags[id] = tag
	}
	return id, nil
}

func (p *Pages) TaggedSnapshots(_ context.Context, d replication.DiskRef, tag string) ([]string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	dk, err := p.get(d)
	if err != nil {
		return nil, err
	}
	var out []string
	for id := range dk.snaps {
		if dk.tags[id] == tag {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out, nil
}

func (p *Pages) DeleteSnapshot(_ context.Context, d replication.DiskRef, snapshot string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if dk, ok := p.disks[d.String()]; ok {
		delete(dk.snaps, snapshot)
	}
	return nil
}

// StartCopy copies at once (the copy is reported "success" on the first poll).
func (p *Pages) StartCopy(_ context.Context, src replication.DiskRef, snapshot string, dst replication.DiskRef) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	dk, pages, err := p.pagesOf(src, snapshot)
	if err != nil {
		return err
	}
	cp := &disk{size: dk.size, pages: map[int64][]byte{}, snaps: map[string]map[int64][]byte{}}
	for k, v := range pages {
		cp.pages[k] = v
	}
	cp.copy = &replication.CopyState{Status: "success", Copied: dk.size, Total: dk.size}
	p.disks[dst.String()] = cp
	return nil
}

func (p *Pages) CopyStatus(_ context.Context, dst replication.DiskRef) (replication.CopyState, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	dk, err := p.get(dst)
	if err != nil {
		return replication.CopyState{}, err
	}
	if dk.copy == nil {
		return replication.CopyState{}, nil
	}
	return *dk.copy, nil
}

// URL is an address in a domain that never resolves: memory disks have no network address.
func (p *Pages) URL(d replication.DiskRef) string { return "https://memstore.invalid/" + d.String() }

func (p *Pages) PutBlob(_ context.Context, ref replication.DiskRef, data []byte, _ string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.containers[ref.Container] {
		return fmt.Errorf("container %s: %w", ref.Container, replication.ErrNotFound)
	}
	if p.docs == nil {
		p.docs = map[string][]byte{}
	}
	p.docs[ref.String()] = bytes.Clone(data)
	return nil
}

func (p *Pages) GetBlob(_ context.Context, ref replication.DiskRef) ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	data, ok := p.docs[ref.String()]
	if !ok {
		return nil, fmt.Errorf("blob %s: %w", ref, replication.ErrNotFound)
	}
	return bytes.Clone(data), nil
}

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
	keys := make([]string, 0, len(rows))
	for k := range rows {
		keys = append(keys, k)
	}
	sort.Strings(keys)
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

// Journal is an in-memory journal store.
type Journal struct {
	mu          sync.Mutex
	batches     map[string]map[int64][]byte
	stored      map[string]map[int64]time.Time
	Quarantined map[string][]byte // "group/seq" → payload
	Now         func() time.Time
}

// NewJournal returns an empty journal.
func NewJournal() *Journal {
	return &Journal{batches: map[string]map[int64][]byte{}, stored: map[string]map[int64]time.Time{}, Quarantined: map[string][]byte{},
		Now: time.Now}
}

func (j *Journal) Put(_ context.Context, group string, seq int64, payload []byte) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.batches[group] == nil {
		j.batches[group] = map[int64][]byte{}
		j.stored[group] = map[int64]time.Time{}
	}
	j.batches[group][seq] = append([]byte(nil), payload...)
	j.stored[group][seq] = j.Now()
	return nil
}

func (j *Journal) Get(_ context.Context, group string, seq int64) ([]byte, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	p, ok := j.batches[group][seq]
	if !ok {
		return nil, fmt.Errorf("batch %d of %s: %w", seq, group, replication.ErrNotFound)
	}
	return append([]byte(nil), p...), nil
}

func (j *Journal) Delete(_ context.Context, group string, seq int64) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	delete(j.batches[group], seq)
	return nil
}

func (j *Journal) List(_ context.Context, group string) ([]int64, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []int64
	for seq := range j.batches[group] {
		out = append(out, seq)
	}
	sort.Slice(out, func(a, b int) bool { return out[a] < out[b] })
	return out, nil
}

func (j *Journal) Prune(_ context.Context, group string, through int64, olderThan time.Time) (int, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	n := 0
	for seq := range j.batches[group] {
		if seq <= through && j.stored[group][seq].Before(olderThan) {
			delete(j.batches[group], seq)
			n++
		}
	}
	return n, nil
}

func (j *Journal) Quarantine(_ context.Context, group string, seq int64, payload []byte, reason string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.Quarantined[fmt.Sprintf("%s/%d", group, seq)] = append([]byte(nil), payload...)
	return nil
}

var (
	_ replication.PageStore    = (*Pages)(nil)
	_ replication.StateStore   = (*State)(nil)
	_ replication.JournalStore = (*Journal)(nil)
)
