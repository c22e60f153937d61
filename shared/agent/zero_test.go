package agent

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/standby-dr/standby/shared/replication"
)

// trimDisk opens an agent on one "agent" disk of size bytes (a sparse file in its state folder) with
// 1 MiB written every 256 MiB; it returns the agent and the disk's file.
func trimDisk(tb testing.TB, size int64) (*Agent, string) {
	tb.Helper()
	p := newPipeline(nil, 1, 1, size)
	p.t = nil
	dir := tb.TempDir()
	a, _, err := Open(context.Background(), Config{Group: p.group, Disks: p.spec.Disks(), Journal: p.journal, Publisher: p.pub,
		StreamKey: p.key, StateDir: dir, MaxBatchDelay: 5 * time.Millisecond, Log: p.applier.Log})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { a.Close(context.Background()) })
	for off := int64(0); off < size; off += 256 << 20 {
		if err := a.Write("vm0/disk0", off, bytes.Repeat([]byte{0x5A}, 1<<20)); err != nil {
			tb.Fatal(err)
		}
	}
	return a, filepath.Join(dir, p.group, "vm0", "disk0.img")
}

// allocated is how many bytes of the file hold blocks.
func allocated(tb testing.TB, path string) int64 {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		tb.Fatal(err)
	}
	return st.Blocks * 512
}

// A whole-disk TRIM (mkfs sends one) writes no zeros: the backing file's blocks are freed, the disk
// reads zeros, and the stream gets zero extents covering it.
func TestTrimPunchesNoZeros(t *testing.T) {
	const size = 16 << 30
	a, path := trimDisk(t, size)
	before := allocated(t, path)
	if before < 64<<20 {
		t.Fatalf("the written disk holds %d bytes", before)
	}
	if err := a.Trim("vm0/disk0", 0, size); err != nil {
		t.Fatal(err)
	}
	if after := allocated(t, path); after > 1<<20 {
		t.Fatalf("after a whole-disk trim the file still holds %d bytes (held %d)", after, before)
	}
	got := make([]byte, 1<<20)
	if _, err := a.ReadDisk("vm0/disk0", got, 256<<20); err != nil || !replication.IsZero(got) {
		t.Fatalf("a trimmed range does not read as zeros (%v)", err)
	}
	// WriteZeroes keeps the range provisioned (NBD's NO_HOLE): zeros, blocks kept.
	a.Write("vm0/disk0", 0, bytes.Repeat([]byte{1}, 4<<20))
	if err := a.WriteZeroes("vm0/disk0", 0, 4<<20); err != nil {
		t.Fatal(err)
	}
	if _, err := a.ReadDisk("vm0/disk0", got, 0); err != nil || !replication.IsZero(got) || allocated(t, path) < 4<<20 {
		t.Fatalf("write-zeroes: zeros %v, %d bytes allocated (%v)", replication.IsZero(got), allocated(t, path), err)
	}
}

// BenchmarkFigure_trim: a whole-disk TRIM of a 16 GiB sparse backing file holding 64 MiB:
// trim_s_per_tib (the call's time scaled to a TiB) and trim_bytes_written (the bytes the process wrote
// meanwhile, from /proc/self/io; the stream's zero extents are records, not data).
func BenchmarkFigure_trim(b *testing.B) {
	const size = 16 << 30
	var secs, written []float64
	for range b.N {
		a, _ := trimDisk(b, size)
		w0 := procWriteBytes(b)
		start := time.Now()
		if err := a.Trim("vm0/disk0", 0, size); err != nil {
			b.Fatal(err)
		}
		secs = append(secs, time.Since(start).Seconds()*float64(1<<40)/size)
		written = append(written, float64(procWriteBytes(b)-w0))
	}
	b.ReportMetric(median(secs), "trim_s_per_tib:s")
	b.ReportMetric(median(written), "trim_bytes_written:B")
}

func procWriteBytes(tb testing.TB) int64 {
	data, err := os.ReadFile("/proc/self/io")
	if err != nil {
		tb.Skip("no /proc/self/io")
	}
	var n int64
	for _, line := range bytes.Split(data, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("write_bytes: ")); ok {
			for _, c := range v {
				n = n*10 + int64(c-'0')
			}
		}
	}
	return n
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s[len(s)/2]
}
