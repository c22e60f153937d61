package replication

import (
	"bytes"
	"errors"
	"math/rand"
	"reflect"
	"strings"
	"testing"
	"time"
)

func sampleBatch() *Batch {
	data := bytes.Repeat([]byte("standby!"), 128) // 1 KiB
	return &Batch{Group: "g1", Seq: 42, Kind: KindBatch, SourceTime: time.Date(2026, 11, 26, 1, 2, 3, 4, time.UTC),
		Extents: []Extent{{Disk: "vm1/disk0", Offset: 4096, Length: 1024, Data: data}, {Disk: "vm2/disk1", Offset: 1 << 30, Length: 1 << 20, Zero: true}}}
}

func TestBatchRoundTrip(t *testing.T) {
	for _, compress := range []bool{false, true} {
		b := sampleBatch()
		payload, err := EncodeBatch(b, compress)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeBatch(payload)
		if err != nil {
			t.Fatalf("compress=%v: %v", compress, err)
		}
		if !reflect.DeepEqual(got, b) {
			t.Fatalf("compress=%v: round trip changed the batch:\n%+v\n%+v", compress, got, b)
		}
	}
	marker := &Batch{Group: "g1", Seq: 43, Kind: KindMarker, Consistency: "app", SourceTime: time.Unix(5, 0).UTC()}
	payload, _ := EncodeBatch(marker, false)
	if got, err := DecodeBatch(payload); err != nil || !reflect.DeepEqual(got, marker) {
		t.Fatalf("marker round trip: %+v, %v", got, err)
	}
	scrub := sampleScrub()
	payload, _ = EncodeBatch(scrub, true)
	if got, err := DecodeBatch(payload); err != nil || !reflect.DeepEqual(got, scrub) || got.Bytes() != 0 {
		t.Fatalf("scrub round trip: %+v, %v", got, err)
	}
}

// sampleScrub hashes 2.5 blocks of a disk from its second block: three hashes, the last one of a
// zero block.
func sampleScrub() *Batch {
	hashes := append(bytes.Repeat([]byte{7}, 64), make([]byte, 32)...)
	return &Batch{Group: "g1", Seq: 44, Kind: KindScrub, SourceTime: time.Unix(6, 0).UTC(),
		Extents: []Extent{{Disk: "vm1/disk0", Offset: BlockSize, Length: 2*BlockSize + BlockSize/2, Hashes: true, Data: hashes}}}
}

func TestEveryCorruptionIsDetected(t *testing.T) {
	payload, _ := EncodeBatch(sampleBatch(), false)
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 2000; i++ {
		bad := append([]byte(nil), payload...)
		pos := rng.Intn(len(bad))
		bad[pos] ^= byte(1 << rng.Intn(8))
		if _, err := DecodeBatch(bad); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("flipping a bit at byte %d went unnoticed (err %v)", pos, err)
		}
	}
	for _, n := range []int{0, 5, headerSize, len(payload) - 1} {
		if _, err := DecodeBatch(payload[:n]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("truncation to %d bytes went unnoticed", n)
		}
	}
}

func TestEncodeRefusesInvalidBatches(t *testing.T) {
	cases := []struct {
		mutate func(*Batch)
		want   string
	}{
		{func(b *Batch) { b.Extents[0].Offset = 100 }, "not a positive 512-byte-aligned range"},
		{func(b *Batch) { b.Extents[0].Data = b.Extents[0].Data[:512] }, "carries 512 bytes for a length of 1024"},
		{func(b *Batch) { b.Seq = 0 }, "sequence numbers start at 1"},
		{func(b *Batch) { b.Kind = KindMarker; b.Consistency = "crash" }, "carries extents"},
		{func(b *Batch) { b.Extents[1].Offset = MaxDiskSize }, "ends past 8 TiB"},
		{func(b *Batch) { b.Kind = KindScrub }, "only a scrub's extents, and all of them, carry hashes"},
		{func(b *Batch) { *b = *sampleScrub(); b.Extents[0].Offset = 4096 }, "does not start on a 1048576-byte block"},
		{func(b *Batch) { *b = *sampleScrub(); b.Extents[0].Data = b.Extents[0].Data[:64] }, "carries 64 bytes of hashes, want 96"},
		{func(b *Batch) { *b = *sampleScrub(); b.Kind = KindBatch }, "only a scrub's extents, and all of them, carry hashes"},
		{func(b *Batch) { // ranges that together make apply read more than a record may ask
			*b = *sampleScrub()
			e := Extent{Disk: "vm1/disk0", Length: MaxScrubBytes, Hashes: true, Data: make([]byte, hashBytes(MaxScrubBytes))}
			b.Extents = []Extent{e, e}
		}, "hashes 134217728 bytes, more than 67108864"},
	}
	for _, c := range cases {
		b := sampleBatch()
		c.mutate(b)
		if _, err := EncodeBatch(b, false); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("EncodeBatch: %v, want %q", err, c.want)
		}
	}
}

func FuzzDecodeBatch(f *testing.F) {
	for _, compress := range []bool{false, true} {
		payload, _ := EncodeBatch(sampleBatch(), compress)
		f.Add(payload)
		payload, _ = EncodeBatch(sampleScrub(), compress)
		f.Add(payload)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := DecodeBatch(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error does not wrap ErrCorrupt: %v", err)
			}
			return
		}
		// Whatever decodes must re-encode to a payload that decodes to the same batch.
		again, err := EncodeBatch(b, false)
		if err != nil {
			t.Fatalf("decoded batch does not re-encode: %v", err)
		}
		b2, err := DecodeBatch(again)
		if err != nil || !reflect.DeepEqual(b, b2) {
			t.Fatalf("re-encoded batch differs: %v", err)
		}
	})
}
