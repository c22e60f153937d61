package vhd

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"
)

var testID = [16]byte{0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef}

// The fields at the offsets of the specification's table, read back from the bytes one by one.
func TestFooterFields(t *testing.T) {
	when := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	f, err := NewFixed(3<<20, testID, when)
	if err != nil {
		t.Fatal(err)
	}
	b := f.Bytes()
	be := binary.BigEndian
	want := []struct {
		name     string
		off, len int
		value    []byte
	}{
		{"cookie", 0, 8, []byte("conectix")},
		{"features", 8, 4, []byte{0, 0, 0, 2}},
		{"file format version", 12, 4, []byte{0, 1, 0, 0}},
		{"data offset", 16, 8, bytes.Repeat([]byte{0xff}, 8)},
		{"time stamp", 24, 4, be.AppendUint32(nil, uint32(when.Unix()-946684800))},
		{"creator application", 28, 4, []byte("stby")},
		{"creator version", 32, 4, []byte{0, 1, 0, 0}},
		{"creator host OS", 36, 4, []byte("Wi2k")},
		{"original size", 40, 8, be.AppendUint64(nil, 3<<20)},
		{"current size", 48, 8, be.AppendUint64(nil, 3<<20)},
		{"disk geometry", 56, 4, []byte{0, 90, 4, 17}}, // 6144 sectors: 361 cylinder×heads of 17 → 90/4/17
		{"disk type", 60, 4, []byte{0, 0, 0, 2}},
		{"unique id", 68, 16, testID[:]},
		{"saved state", 84, 1, []byte{0}},
		{"reserved", 85, 427, make([]byte, 427)},
	}
	for _, w := range want {
		if got := b[w.off : w.off+w.len]; !bytes.Equal(got, w.value) {
			t.Errorf("%s at %d: % x, want % x", w.name, w.off, got, w.value)
		}
	}
	// The checksum, computed here independently: the bytes summed as the specification says, with the
	// checksum field taken as zero, then complemented.
	var sum uint32
	for i := 0; i < 512; i++ {
		if i < 64 || i > 67 {
			sum += uint32(b[i])
		}
	}
	if got := be.Uint32(b[64:68]); got != ^sum {
		t.Errorf("checksum 0x%08x, want 0x%08x", got, ^sum)
	}
	if f.Time() != when {
		t.Errorf("time %s, want %s", f.Time(), when)
	}
}

func TestGeometry(t *testing.T) {
	for _, c := range []struct {
		size int64
		want CHS
	}{
		{1 << 20, CHS{30, 4, 17}},
		{10 << 20, CHS{301, 4, 17}},
		{100 << 20, CHS{1003, 12, 17}},
		{200 << 20, CHS{825, 16, 31}},
		{500 << 20, CHS{1015, 16, 63}},
		{1 << 30, CHS{2080, 16, 63}},
		{32 << 30, CHS{16448, 16, 255}},
		{127 << 30, CHS{65278, 16, 255}},
		{8 << 40, CHS{65535, 16, 255}}, // past the largest geometry: capped
	} {
		if got := Geometry(c.size); got != c.want {
			t.Errorf("Geometry(%d) = %v, want %v", c.size, got, c.want)
		}
	}
}

func TestNewFixedRefusesSizes(t *testing.T) {
	for _, size := range []int64{0, -1 << 20, 512, 1<<20 + 512, 1000} {
		_, err := NewFixed(size, testID, time.Now())
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "whole number of MiB") {
			t.Errorf("NewFixed(%d): %v", size, err)
		}
	}
	if _, err := NewFixed(1<<20, testID, time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC)); err == nil {
		t.Error("a time before 2000 was taken")
	}
}

func TestParse(t *testing.T) {
	f, _ := NewFixed(64<<20, testID, time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	good := f.Bytes()
	got, err := Parse(good[:])
	if err != nil || got != f {
		t.Fatalf("Parse: %+v, %v; want %+v", got, err, f)
	}
	mutate := func(change func(b *[512]byte), fixSum bool) []byte {
		b := good
		change(&b)
		if fixSum {
			binary.BigEndian.PutUint32(b[64:], Checksum(b))
		}
		return b[:]
	}
	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{"short", good[:511], "511 bytes, a footer has 512"},
		{"cookie", mutate(func(b *[512]byte) { copy(b[:], "cxsparse") }, true), `cookie "cxsparse"`},
		{"checksum", mutate(func(b *[512]byte) { b[300] = 1 }, false), "checksum 0x"},
		{"dynamic", mutate(func(b *[512]byte) { b[63] = 3 }, true), "disk type 3 (dynamic), want 2 (fixed)"},
		{"data offset", mutate(func(b *[512]byte) { binary.BigEndian.PutUint64(b[16:], 512) }, true), "data offset 0x200"},
		{"version", mutate(func(b *[512]byte) { b[13] = 2 }, true), "file format version 0x00020000"},
		{"size", mutate(func(b *[512]byte) { binary.BigEndian.PutUint64(b[48:], 1000) }, true), "current size 1000"},
		{"zero size", mutate(func(b *[512]byte) { binary.BigEndian.PutUint64(b[48:], 0) }, true), "current size 0"},
	} {
		_, err := Parse(c.data)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error saying %q", c.name, err, c.want)
		}
	}
}

func TestNewID(t *testing.T) {
	a, b := NewID(), NewID()
	if a == b || a[6]>>4 != 4 || a[8]>>6 != 2 {
		t.Errorf("ids %x and %x", a, b)
	}
}

func FuzzParse(f *testing.F) {
	good, _ := NewFixed(1<<20, testID, Epoch)
	b := good.Bytes()
	f.Add(b[:])
	f.Add(make([]byte, 512))
	f.Add([]byte("conectix"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := Parse(data)
		if err != nil {
			return
		}
		// What parses writes back to bytes that parse to the same footer.
		again := got.Bytes()
		back, err := Parse(again[:])
		back.Checksum = got.Checksum // differs when the reserved bytes were not zeros
		if err != nil || back != got {
			t.Fatalf("%+v does not survive Bytes and Parse: %+v, %v", got, back, err)
		}
	})
}
