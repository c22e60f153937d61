package replication

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/errgroup"
)

// writeSet coalesces the extents of consecutive batches: a later write to a range replaces what earlier
// ones put there, so each byte is written once, with its final content, however often the source
// rewrote it. Applying a write set is idempotent: it writes final content only.
type writeSet struct {
	disks map[string][]Extent // per disk: sorted, non-overlapping
	bytes int64
}

// newWriteSet returns an empty write set.
func newWriteSet() *writeSet { return &writeSet{disks: map[string][]Extent{}} }

// Add places an extent over whatever the set holds at that range.
func (w *writeSet) Add(e Extent) {
	list := w.disks[e.Disk]
	start, end := e.Offset, e.Offset+e.Length
	// list[i:j] are the extents overlapping [start, end).
	i := sort.Search(len(list), func(i int) bool { return list[i].Offset+list[i].Length > start })
	j := i
	for j < len(list) && list[j].Offset < end {
		j++
	}
	out := make([]Extent, 0, len(list)-(j-i)+3)
	out = append(out, list[:i]...)
	if i < j && list[i].Offset < start {
		out = append(out, slice(list[i], list[i].Offset, start))
	}
	out = append(out, e)
	if i < j && list[j-1].Offset+list[j-1].Length > end {
		last := list[j-1]
		out = append(out, slice(last, end, last.Offset+last.Length))
	}
	w.disks[e.Disk] = append(out, list[j:]...)
}

// slice returns the part [from, to) of an extent.
func slice(e Extent, from, to int64) Extent {
	out := Extent{Disk: e.Disk, Offset: from, Length: to - from, Zero: e.Zero}
	if !e.Zero {
		out.Data = e.Data[from-e.Offset : to-e.Offset]
	}
	return out
}

// AddBatch adds every extent of a batch, in order.
func (w *writeSet) AddBatch(b *Batch) {
	for _, e := range b.Extents {
		w.Add(e)
		w.bytes += e.Length
	}
}

// Empty reports whether the set holds nothing.
func (w *writeSet) Empty() bool { return len(w.disks) == 0 }

// Extents returns a disk's extents in offset order.
func (w *writeSet) Extents(disk string) []Extent { return w.disks[disk] }

// Disks lists the disks the set touches.
func (w *writeSet) Disks() []string {
	var out []string
	for d := range w.disks {
		out = append(out, d)
	}
	sort.Strings(out)
	return out
}

// pageOp is one storage call of a flush.
type pageOp struct {
	disk   string
	offset int64
	length int64
	data   []byte // nil: clear
}

// ops turns the set into storage calls: runs of all-zero pages become clears (nothing stored, nothing
// sent), the rest writes of at most MaxPageWrite bytes; adjacent extents merge into one call.
func (w *writeSet) ops() []pageOp {
	var ops []pageOp
	for _, disk := range w.Disks() {
		var cur *pageOp
		owned := false // cur.data is a buffer of its own, not an extent's data
		emit := func() {
			if cur != nil {
				ops = append(ops, *cur)
				cur = nil
			}
		}
		add := func(offset int64, data []byte, zero bool, length int64) {
			if cur != nil && cur.offset+cur.length == offset && (cur.data == nil) == zero {
				if zero {
					cur.length += length
					return
				}
				if cur.length+length <= MaxPageWrite {
					// The first merge copies into a buffer of the call's own, never into the extent's
					// data behind it; later ones append to it (amortized: each byte copied a bounded
					// number of times, where copying the whole call on every merge was quadratic in
					// the pieces of a sequential write).
					if !owned {
						cur.data = append(make([]byte, 0, min(MaxPageWrite, 2*(len(cur.data)+len(data)))), cur.data...)
						owned = true
					}
					cur.data = append(cur.data, data...)
					cur.length += length
					return
				}
			}
			emit()
			cur, owned = &pageOp{disk: disk, offset: offset, length: length}, false
			if !zero {
				cur.data = data
			}
		}
		for _, e := range w.disks[disk] {
			if e.Zero {
				add(e.Offset, nil, true, e.Length)
				continue
			}
			// Split the data at page granularity into zero and non-zero runs.
			for p := int64(0); p < e.Length; {
				zero := IsZero(e.Data[p : p+PageSize])
				q := p + PageSize
				for q < e.Length && IsZero(e.Data[q:q+PageSize]) == zero && (zero || q-p < MaxPageWrite) {
					q += PageSize
				}
				add(e.Offset+p, e.Data[p:q], zero, q-p)
				p = q
			}
		}
		emit()
	}
	return ops
}

// BlockSize is the unit of initial replication and of checksum comparison between source and target.
const BlockSize = 1 << 20

// BlockHash is a block's checksum as source and target compare them: "" for an all-zero block (what a
// never-written page blob range reads as, so the target need not read it), else the hex sha256.
func BlockHash(block []byte) string {
	if IsZero(block) {
		return ""
	}
	return hex.EncodeToString(BlockDigest(block))
}

// BlockDigest is a block's checksum as a scrub record carries it: the SHA-256, or 32 zero bytes for
// an all-zero block (BlockHash's "").
func BlockDigest(block []byte) []byte {
	if IsZero(block) {
		return make([]byte, sha256.Size)
	}
	sum := sha256.Sum256(block)
	return sum[:]
}

// IsZero reports whether every byte of b is zero (a never-written page reads so).
func IsZero(b []byte) bool {
	for _, v := range b {
		if v != 0 {
			return false
		}
	}
	return true
}

// flushStats reports a flush.
type flushStats struct {
	Writes, Clears             int
	BytesWritten, BytesCleared int64
}

// Flush writes the set to the target disks with at most parallelism calls in flight.
func (w *writeSet) Flush(ctx context.Context, pages PageStore, target func(disk string) DiskRef, parallelism int) (flushStats, error) {
	var stats flushStats
	var mu sync.Mutex
	var calls atomic.Int64
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(max(parallelism, 1))
	for _, op := range w.ops() {
		g.Go(func() error {
			calls.Add(1)
			ref := target(op.disk)
			var err error
			if op.data == nil {
				err = pages.ClearPages(ctx, ref, op.offset, op.length)
			} else {
				err = pages.WritePages(ctx, ref, op.offset, op.data)
			}
			if err != nil {
				return fmt.Errorf("disk %s at %d: %w", op.disk, op.offset, err)
			}
			mu.Lock()
			if op.data == nil {
				stats.Clears++
				stats.BytesCleared += op.length
			} else {
				stats.Writes++
				stats.BytesWritten += op.length
			}
			mu.Unlock()
			return nil
		})
	}
	return stats, g.Wait()
}

// MergeRanges sorts ranges and merges the overlapping and adjacent ones.
func MergeRanges(in []PageRange) []PageRange {
	rs := append([]PageRange(nil), in...)
	sort.Slice(rs, func(i, j int) bool { return rs[i].Offset < rs[j].Offset })
	var out []PageRange
	for _, r := range rs {
		if n := len(out); n > 0 && r.Offset <= out[n-1].End() {
			if r.End() > out[n-1].End() {
				out[n-1].Length = r.End() - out[n-1].Offset
			}
			continue
		}
		out = append(out, r)
	}
	return out
}

// SubtractRanges returns the parts of a not covered by b (both sorted and merged).
func SubtractRanges(a, b []PageRange) []PageRange {
	var out []PageRange
	j := 0
	for _, r := range a {
		start, end := r.Offset, r.End()
		for j < len(b) && b[j].End() <= start {
			j++
		}
		for k := j; k < len(b) && b[k].Offset < end; k++ {
			if b[k].Offset > start {
				out = append(out, PageRange{Offset: start, Length: b[k].Offset - start})
			}
			start = max(start, b[k].End())
		}
		if start < end {
			out = append(out, PageRange{Offset: start, Length: end - start})
		}
	}
	return out
}
