package nbd

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestFileExport(t *testing.T) {
	f, err := os.OpenFile(filepath.Join(t.TempDir(), "disk.raw"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const size = 3<<20 + 4096 // WriteZeroes works in 1 MiB pieces: cover a partial one
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	e, err := NewFileExport(f)
	if err != nil {
		t.Fatal(err)
	}
	if e.Size() != size {
		t.Fatalf("Size %d, want %d", e.Size(), size)
	}
	full := bytes.Repeat([]byte{0x5a}, size)
	if err := e.WriteAt(full, 0, true); err != nil {
		t.Fatal(err)
	}
	if err := e.WriteZeroes(4096, 2<<20+512, false); err != nil {
		t.Fatal(err)
	}
	if err := e.Trim(3<<20, 4096); err != nil {
		t.Fatal(err)
	}
	if err := e.Flush(); err != nil {
		t.Fatal(err)
	}
	want := bytes.Clone(full)
	clear(want[4096 : 4096+2<<20+512])
	clear(want[3<<20 : 3<<20+4096])
	got := make([]byte, size)
	if n, err := e.ReadAt(got, 0); n != size || err != nil {
		t.Fatalf("ReadAt: %d, %v", n, err)
	}
	if !bytes.Equal(got, want) {
		t.Error("the file does not read back as written, zeroed and trimmed")
	}
	if err := e.WriteAt([]byte{1}, 0, false); err != nil {
		t.Fatal(err)
	}
	ro, err := os.Open(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	re, err := NewFileExport(ro)
	if err != nil {
		t.Fatal(err)
	}
	if err := re.WriteAt([]byte{1}, 0, false); err == nil {
		t.Error("a write to a file opened read-only succeeded")
	}
}
