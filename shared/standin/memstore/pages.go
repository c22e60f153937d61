package memstore

import (
	"bytes"
	"context"
	"fmt"
	"sort"
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

// writable returns the disk a write under ctx may change (it exists and the write is not fenced).
func (p *Pages) writable(ctx context.Context, d replication.DiskRef) (*disk, error) {
	dk, err := p.get(d)
	if err != nil {
		return nil, err
	}
	if err := dk.fenced(ctx, d); err != nil {
		return nil, err
	}
	return dk, nil
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
	if err := replication.CheckPageRange(offset, int64(len(data))); err != nil {
		return err
	}
	if len(data) > replication.MaxPageWrite {
		return fmt.Errorf("write of %d bytes exceeds 4 MiB: %w", len(data), replication.ErrInvalid)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	dk, err := p.writable(ctx, d)
	if err != nil {
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
	if err := replication.CheckPageRange(offset, length); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	dk, err := p.writable(ctx, d)
	if err != nil {
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

// StartCopyFromURL copies at once from a blob of this store, named by its URL.
func (p *Pages) StartCopyFromURL(ctx context.Context, srcURL string, dst replication.DiskRef) error {
	container, name, ok := strings.Cut(strings.TrimPrefix(strings.SplitN(srcURL, "?", 2)[0], "https://memstore.invalid/"), "/")
	if !ok || !strings.HasPrefix(srcURL, "https://memstore.invalid/") {
		return fmt.Errorf("%w: %s is not a blob of this store", replication.ErrInvalid, dst)
	}
	return p.StartCopy(ctx, replication.DiskRef{Container: container, Name: name}, "", dst)
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
