package replication

import (
	"bytes"
	"math"
	"math/rand"
	"testing"
	"time"
)

// memDisk is a byte-slice disk that counts the calls a flush makes.
type memDisk struct {
	data           []byte
	writes, clears int
}

func TestWriteSetMatchesWritingEveryExtentInOrder(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	const size = 1 << 20
	for round := 0; round < 200; round++ {
		model := map[string][]byte{"a": make([]byte, size), "b": make([]byte, size)}
		ws := newWriteSet()
		for n := 0; n < 1+rng.Intn(40); n++ {
			disk := []string{"a", "b"}[rng.Intn(2)]
			off := int64(rng.Intn(size/PageSize)) * PageSize
			length := int64(1+rng.Intn(64)) * PageSize
			if off+length > size {
				length = size - off
			}
			e := Extent{Disk: disk, Offset: off, Length: length}
			switch rng.Intn(4) {
			case 0:
				e.Zero = true
			case 1: // data with zero pages inside
				e.Data = make([]byte, length)
				for p := int64(0); p < length; p += PageSize {
					if rng.Intn(2) == 0 {
						rng.Read(e.Data[p : p+PageSize])
					}
				}
			default:
				e.Data = make([]byte, length)
				rng.Read(e.Data)
			}
			if e.Zero {
				copy(model[disk][off:off+length], make([]byte, length))
			} else {
				copy(model[disk][off:off+length], e.Data)
			}
			ws.Add(e)
		}
		got := map[string]*memDisk{"a": {data: make([]byte, size)}, "b": {data: make([]byte, size)}}
		// Start the replicas from garbage where the set writes, so clears must really clear.
		for _, d := range got {
			rng.Read(d.data)
		}
		// The replicas equal the model only where the set wrote: compare those ranges.
		for _, op := range ws.ops() {
			d := got[op.disk]
			if op.length%PageSize != 0 || op.offset%PageSize != 0 {
				t.Fatalf("unaligned op %+v", op)
			}
			if op.data == nil {
				copy(d.data[op.offset:op.offset+op.length], make([]byte, op.length))
				d.clears++
			} else {
				if int64(len(op.data)) != op.length || op.length > MaxPageWrite {
					t.Fatalf("bad write op of %d bytes (length %d)", len(op.data), op.length)
				}
				if IsZero(op.data[:PageSize]) {
					t.Fatalf("a write starts with a zero page: zero pages must be cleared")
				}
				copy(d.data[op.offset:op.offset+op.length], op.data)
				d.writes++
			}
		}
		for disk := range model {
			for _, e := range ws.Extents(disk) {
				if !bytes.Equal(got[disk].data[e.Offset:e.Offset+e.Length], model[disk][e.Offset:e.Offset+e.Length]) {
					t.Fatalf("round %d: disk %s differs from in-order application at [%d, +%d)", round, disk, e.Offset, e.Length)
				}
			}
			exts := ws.Extents(disk)
			for i := 1; i < len(exts); i++ {
				if exts[i-1].Offset+exts[i-1].Length > exts[i].Offset {
					t.Fatalf("extents overlap: %+v then %+v", exts[i-1], exts[i])
				}
			}
		}
	}
}

func TestFlushWritesFinalContentOnce(t *testing.T) {
	ws := newWriteSet()
	a := bytes.Repeat([]byte{1}, 8192)
	b := bytes.Repeat([]byte{2}, 4096)
	ws.Add(Extent{Disk: "d", Offset: 0, Length: 8192, Data: a})
	ws.Add(Extent{Disk: "d", Offset: 2048, Length: 4096, Data: b})
	ws.Add(Extent{Disk: "d", Offset: 1 << 20, Length: 1 << 20, Zero: true})
	ops := ws.ops()
	if len(ops) != 2 || ops[0].length != 8192 || ops[1].data != nil || ops[1].length != 1<<20 {
		t.Fatalf("ops = %+v; want one 8 KiB write (adjacent extents merged) and one clear", ops)
	}
	want := append(append(bytes.Repeat([]byte{1}, 2048), b...), bytes.Repeat([]byte{1}, 2048)...)
	if !bytes.Equal(ops[0].data, want) {
		t.Fatal("merged write has the wrong content")
	}
}

func TestSubtractRanges(t *testing.T) {
	r := func(o, l int64) PageRange { return PageRange{Offset: o, Length: l} }
	got := SubtractRanges([]PageRange{r(0, 100), r(200, 100), r(400, 50)}, []PageRange{r(20, 10), r(90, 130), r(250, 10), r(400, 50)})
	want := []PageRange{r(0, 20), r(30, 60), r(220, 30), r(260, 40)}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}

// The calls of a write set whose extents are adjacent (a sequential write: a database's log, a file
// copy, the kernel's NBD client) cost about what copying their bytes into the calls costs, however many
// pieces make up a call. Figure: the time to build the calls of 64 MiB written in adjacent 4 KiB pieces
// ÷ the raw path, copying the same 64 MiB into 4 MiB buffers, in one run (`go test -run '^$' -bench
// Figure_writeset -benchtime 1x -count 3 ./shared/replication/`); the merge copied the whole call on
// every piece before, quadratic in the pieces.
func BenchmarkFigure_writeset_sequential(b *testing.B) {
	const total, piece = 64 << 20, 4 << 10
	data := bytes.Repeat([]byte{7}, piece)
	ws := newWriteSet()
	for off := int64(0); off < total; off += piece {
		ws.Add(Extent{Disk: "d", Offset: off, Length: piece, Data: data})
	}
	raw := func() {
		for call := 0; call < total/MaxPageWrite; call++ {
			buf := make([]byte, 0, MaxPageWrite)
			for p := 0; p < MaxPageWrite; p += piece {
				buf = append(buf, data...)
			}
		}
	}
	fastest := func(f func()) float64 { // the fastest of 5, in ns
		best := math.MaxFloat64
		for range 5 {
			start := time.Now()
			f()
			best = min(best, float64(time.Since(start)))
		}
		return best
	}
	for b.Loop() {
		s, r := fastest(func() { ws.ops() }), fastest(raw)
		b.ReportMetric(s/r, "sequential_ops_ratio")
		b.ReportMetric(s/1e6, "sequential_ms_per_64MiB")
		b.ReportMetric(r/1e6, "raw_ms_per_64MiB")
	}
}
