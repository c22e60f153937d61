package replication

import (
	"fmt"
	"math/rand"
	"testing"
	"time"
)

// Combined CRCs equal the CRC of the whole, for any split; and the CRCs encoding and decoding combine
// are exactly those of the bytes (the descriptor's, the header's body CRC).
func TestCombinedCRCsAreTheCRCsOfTheBytes(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 200; i++ {
		data := make([]byte, rng.Intn(1<<16))
		rng.Read(data)
		cut := rng.Intn(len(data) + 1)
		if got, want := crcCombine(crc64Of(data[:cut]), crc64Of(data[cut:]), int64(len(data)-cut)), crc64Of(data); got != want {
			t.Fatalf("split %d/%d: combined %016x, whole %016x", cut, len(data), got, want)
		}
	}
	key := make([]byte, 32)
	for _, compress := range []bool{false, true} {
		for i := 0; i < 20; i++ {
			b := &Batch{Group: "g1", Seq: int64(i + 1), Kind: KindBatch, SourceTime: time.Now()}
			for j := 0; j < rng.Intn(6); j++ {
				e := Extent{Disk: fmt.Sprintf("vm/d%d", j), Offset: int64(rng.Intn(100)) * 512, Length: int64(1+rng.Intn(64)) * 512}
				if e.Zero = rng.Intn(4) == 0; !e.Zero {
					e.Data = make([]byte, e.Length)
					rng.Read(e.Data)
				}
				b.Extents = append(b.Extents, e)
			}
			for _, k := range [][]byte{nil, key} {
				payload, d, err := SignBatch(k, b, compress)
				if err != nil {
					t.Fatal(err)
				}
				if want := fmt.Sprintf("%016x", crc64Of(payload)); d.CRC64 != want || d.Bytes != int64(len(payload)) {
					t.Fatalf("descriptor CRC64 %s (%d bytes), payload's %s (%d)", d.CRC64, d.Bytes, want, len(payload))
				}
				opened, err := OpenPayload(k, "g1", b.Seq, payload)
				if err != nil {
					t.Fatal(err)
				}
				if _, crc, err := decodeBatch(opened, false); err != nil || crc != crc64Of(opened) {
					t.Fatalf("decoded CRC %016x, payload's %016x (%v)", crc, crc64Of(opened), err)
				}
			}
		}
	}
}

// One flipped bit anywhere in a payload is refused, whichever CRC catches it.
func TestEveryFlippedBitIsCaught(t *testing.T) {
	b := &Batch{Group: "g1", Seq: 7, Kind: KindBatch, SourceTime: time.Now(),
		Extents: []Extent{{Disk: "vm/d0", Offset: 512, Length: 1024, Data: make([]byte, 1024)}, {Disk: "vm/d1", Offset: 0, Length: 512, Zero: true}}}
	b.Extents[0].Data[3] = 9
	payload, err := EncodeBatch(b, false)
	if err != nil {
		t.Fatal(err)
	}
	for i := range payload {
		for bit := 0; bit < 8; bit++ {
			bad := append([]byte(nil), payload...)
			bad[i] ^= 1 << bit
			if _, err := DecodeBatch(bad); err == nil {
				t.Fatalf("byte %d bit %d flipped: decoded", i, bit)
			}
		}
	}
}
