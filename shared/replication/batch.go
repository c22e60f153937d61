package replication

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/klauspost/compress/zstd"
)

// A change batch is the unit of the ordered write stream of one consistency group: the writes of a short
// interval (extents, in completion order), or a marker. Its payload is stored in the journal (cache
// account) under its sequence number, so the journal alone holds the whole stream: apply can rebuild any
// missing descriptor from it.

// Extent is one write: Length bytes at Offset of Disk ("vm/disk"); Zero extents carry no data and
// read as zeros (trims, and all-zero writes the agent detected).
type Extent struct {
	Disk   string
	Offset int64
	Length int64
	Zero   bool
	Data   []byte
	// Hashes (a scrub's extent): Data holds, for each BlockSize block of the range, the SHA-256 of
	// the source's block there (32 zero bytes for an all-zero block, as BlockHash says ""), and nothing
	// is written.
	Hashes bool
}

// Batch is a decoded change batch.
type Batch struct {
	Group       string
	Seq         int64
	Kind        string // KindBatch, KindMarker, KindResync or KindScrub
	Consistency string // markers: "crash" or "app"
	// Baseline marks the marker that ends initial replication or a resync: from it on, the target
	// disks are complete copies.
	Baseline   bool
	SourceTime time.Time
	Extents    []Extent
}

// Bytes is the number of bytes the batch changes.
func (b *Batch) Bytes() int64 {
	var n int64
	for _, e := range b.Extents {
		if !e.Hashes {
			n += e.Length
		}
	}
	return n
}

const (
	batchMagic      = "SBY1"
	flagZstd        = 1
	headerSize      = 4 + 1 + 8 + 8 // magic, flags, body length, body CRC
	maxBatchBody    = 512 << 20
	maxExtentLength = 256 << 20
	maxNameLength   = 1024
)

var (
	zstdEncoder, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	zstdDecoder, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxBatchBody))
)

// EncodeBatch serialises a batch: a header (magic, flags, body length, body CRC64) then the body,
// zstd-compressed when compress is set. Every extent carries its own CRC64 too, so a torn or corrupted
// payload is detected before a byte of it is written to a disk.
func EncodeBatch(b *Batch, compress bool) ([]byte, error) {
	payload, _, err := encodeBatch(b, compress, 0)
	return payload, err
}

// encodeBatch is EncodeBatch with the payload's CRC64 and room for spare more bytes (a MAC) after it:
// the body is written once, in place after the header, and its data checksummed once.
func encodeBatch(b *Batch, compress bool, spare int) ([]byte, uint64, error) {
	if err := b.validate(); err != nil {
		return nil, 0, err
	}
	size := headerSize + 2 + len(b.Group) + 8 + 3 + 8 + 4 + spare
	for _, e := range b.Extents {
		size += 2 + len(e.Disk) + 8 + 8 + 1 + 8 + len(e.Data)
	}
	buf := bytes.NewBuffer(make([]byte, headerSize, size))
	putString(buf, b.Group)
	putInt(buf, b.Seq)
	kind := map[string]byte{KindBatch: 1, KindMarker: 2, KindResync: 3, KindScrub: 4}[b.Kind]
	buf.WriteByte(kind)
	buf.WriteByte(map[string]byte{"": 0, "crash": 1, "app": 2}[b.Consistency])
	var bflags byte
	if b.Baseline {
		bflags = 1
	}
	buf.WriteByte(bflags)
	putInt(buf, b.SourceTime.UnixNano())
	binary.Write(buf, binary.BigEndian, uint32(len(b.Extents)))
	var segs []crcSegment // the extents' data, at their offsets in the body
	for _, e := range b.Extents {
		putString(buf, e.Disk)
		putInt(buf, e.Offset)
		putInt(buf, e.Length)
		var flags byte
		var crc uint64
		switch {
		case e.Zero:
			flags = 1
		case e.Hashes:
			flags, crc = 2, crc64Of(e.Data)
		default:
			crc = crc64Of(e.Data)
		}
		buf.WriteByte(flags)
		binary.Write(buf, binary.BigEndian, crc)
		if !e.Zero {
			segs = append(segs, crcSegment{off: buf.Len() - headerSize, n: len(e.Data), crc: crc})
			buf.Write(e.Data)
		}
	}
	out := buf.Bytes()
	raw := out[headerSize:]
	bodyCRC := crcWithSegments(raw, segs)
	var flags byte
	if compress {
		flags |= flagZstd
		out = zstdEncoder.EncodeAll(raw, append(make([]byte, 0, headerSize+len(raw)/2+spare), out[:headerSize]...))
	}
	copy(out, batchMagic)
	out[4] = flags
	binary.BigEndian.PutUint64(out[5:13], uint64(len(raw)))
	binary.BigEndian.PutUint64(out[13:21], bodyCRC)
	if compress {
		return out, crc64Of(out), nil
	}
	return out, crcCombine(crc64Of(out[:headerSize]), bodyCRC, int64(len(raw))), nil
}

func putString(w *bytes.Buffer, s string) {
	binary.Write(w, binary.BigEndian, uint16(len(s)))
	w.WriteString(s)
}

func putInt(w *bytes.Buffer, v int64) { binary.Write(w, binary.BigEndian, v) }

func (b *Batch) validate() error {
	if err := ValidGroupName(b.Group); err != nil {
		return fmt.Errorf("batch group: %w", err)
	}
	if b.Seq < 1 {
		return fmt.Errorf("batch seq %d: sequence numbers start at 1", b.Seq)
	}
	if b.Baseline && b.Kind != KindMarker {
		return fmt.Errorf("batch %d: only a marker can end a baseline", b.Seq)
	}
	switch b.Kind {
	case KindBatch:
		if b.Consistency != "" {
			return fmt.Errorf("batch %d: only markers carry a consistency", b.Seq)
		}
	case KindMarker:
		if b.Consistency != "crash" && b.Consistency != "app" {
			return fmt.Errorf("marker %d: consistency %q, want crash or app", b.Seq, b.Consistency)
		}
		if len(b.Extents) > 0 {
			return fmt.Errorf("marker %d carries extents", b.Seq)
		}
	case KindResync:
		if b.Consistency != "" || len(b.Extents) > 0 {
			return fmt.Errorf("resync start %d carries a consistency or extents", b.Seq)
		}
	case KindScrub:
		if err := checkScrub(b); err != nil {
			return err
		}
	default:
		return fmt.Errorf("batch %d: kind %q, want batch, marker, resync or scrub", b.Seq, b.Kind)
	}
	for i, e := range b.Extents {
		if e.Hashes != (b.Kind == KindScrub) {
			return fmt.Errorf("batch %d extent %d: only a scrub's extents, and all of them, carry hashes", b.Seq, i)
		}
		if err := e.validate(); err != nil {
			return fmt.Errorf("batch %d extent %d: %w", b.Seq, i, err)
		}
	}
	return nil
}

func (e Extent) validate() error {
	if e.Disk == "" || len(e.Disk) > maxNameLength {
		return errors.New("disk name empty or too long")
	}
	if e.Offset < 0 || e.Offset%PageSize != 0 || e.Length <= 0 || e.Length%PageSize != 0 || e.Length > maxExtentLength {
		return fmt.Errorf("range [%d, +%d) is not a positive 512-byte-aligned range of at most %d bytes", e.Offset, e.Length, maxExtentLength)
	}
	if e.Offset+e.Length > MaxDiskSize {
		return fmt.Errorf("range [%d, +%d) ends past 8 TiB", e.Offset, e.Length)
	}
	if e.Hashes {
		switch {
		case e.Zero:
			return errors.New("a scrub's range is hashes, not zeros")
		case e.Offset%BlockSize != 0 || e.Length > MaxScrubBytes:
			return fmt.Errorf("scrub range [%d, +%d) does not start on a %d-byte block or is longer than %d", e.Offset, e.Length, BlockSize, int64(MaxScrubBytes))
		case int64(len(e.Data)) != hashBytes(e.Length):
			return fmt.Errorf("a scrub of %d bytes carries %d bytes of hashes, want %d", e.Length, len(e.Data), hashBytes(e.Length))
		}
		return nil
	}
	if !e.Zero && int64(len(e.Data)) != e.Length {
		return fmt.Errorf("carries %d bytes for a length of %d", len(e.Data), e.Length)
	}
	if e.Zero && len(e.Data) != 0 {
		return errors.New("a zero extent carries data")
	}
	return nil
}

// ErrCorrupt marks a payload that fails its checksums or its format: it is quarantined, never applied.
var ErrCorrupt = errors.New("corrupt batch payload")

// DecodeBatch parses and verifies a payload. Every error wraps ErrCorrupt and says what is wrong.
func DecodeBatch(data []byte) (*Batch, error) {
	b, _, err := decodeBatch(data, false)
	return b, err
}

// decodeBatch is DecodeBatch with the CRC64 of data, combined from the CRCs it checks. A payload whose
// MAC verified (sealed) is decoded without checking its CRCs, and its CRC is not computed (0): the
// HMAC-SHA256 over every byte is the stronger check, and its key the agent's alone.
func decodeBatch(data []byte, sealed bool) (*Batch, uint64, error) {
	body, wantCRC, err := decodeHeader(data)
	if err != nil {
		return nil, 0, err
	}
	r := &reader{data: body}
	b, err := decodeMeta(r)
	if err != nil {
		return nil, 0, err
	}
	var segs []crcSegment
	if b.Extents, segs, err = decodeExtents(r, len(body), !sealed); err != nil {
		return nil, 0, err
	}
	if r.err != nil {
		return nil, 0, corrupt("%v", r.err)
	}
	if r.off != len(body) {
		return nil, 0, corrupt("%d trailing bytes", len(body)-r.off)
	}
	if err := b.validate(); err != nil {
		return nil, 0, corrupt("%v", err)
	}
	if sealed {
		return b, 0, nil
	}
	bodyCRC := crcWithSegments(body, segs)
	if bodyCRC != wantCRC {
		return nil, 0, corrupt("body CRC64 %016x, header says %016x", bodyCRC, wantCRC)
	}
	if data[4]&flagZstd != 0 {
		return b, crc64Of(data), nil
	}
	return b, crcCombine(crc64Of(data[:headerSize]), bodyCRC, int64(len(body))), nil
}

// corrupt is an error of DecodeBatch: ErrCorrupt and what is wrong.
func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

// decodeHeader checks the payload's header and returns the body it describes, decompressed and
// checked against the header's length, and the body's CRC64 as the header gives it.
func decodeHeader(data []byte) ([]byte, uint64, error) {
	if len(data) < headerSize {
		return nil, 0, corrupt("%d bytes is shorter than the %d-byte header", len(data), headerSize)
	}
	if string(data[:4]) != batchMagic {
		return nil, 0, corrupt("bad magic %q", data[:4])
	}
	flags := data[4]
	if flags&^flagZstd != 0 {
		return nil, 0, corrupt("unknown flags %#x", flags)
	}
	bodyLen := binary.BigEndian.Uint64(data[5:13])
	wantCRC := binary.BigEndian.Uint64(data[13:21])
	if bodyLen > maxBatchBody {
		return nil, 0, corrupt("body length %d exceeds %d", bodyLen, maxBatchBody)
	}
	body := data[headerSize:]
	if flags&flagZstd != 0 {
		var err error
		if body, err = zstdDecoder.DecodeAll(body, make([]byte, 0, bodyLen)); err != nil {
			return nil, 0, corrupt("decompressing: %v", err)
		}
	}
	if uint64(len(body)) != bodyLen {
		return nil, 0, corrupt("body is %d bytes, header says %d", len(body), bodyLen)
	}
	return body, wantCRC, nil
}

// decodeMeta reads the body's fields before the extents: group, sequence, kind, consistency, flags
// and source time.
func decodeMeta(r *reader) (*Batch, error) {
	b := &Batch{}
	b.Group = r.str()
	b.Seq = r.i64()
	switch r.u8() {
	case 1:
		b.Kind = KindBatch
	case 2:
		b.Kind = KindMarker
	case 3:
		b.Kind = KindResync
	case 4:
		b.Kind = KindScrub
	default:
		return nil, corrupt("unknown batch kind")
	}
	switch r.u8() {
	case 0:
	case 1:
		b.Consistency = "crash"
	case 2:
		b.Consistency = "app"
	default:
		return nil, corrupt("unknown consistency")
	}
	switch r.u8() {
	case 0:
	case 1:
		b.Baseline = true
	default:
		return nil, corrupt("unknown batch flags")
	}
	b.SourceTime = time.Unix(0, r.i64()).UTC()
	return b, nil
}

// decodeExtents reads the extent count and the extents of a body of bodyLen bytes, checking each
// extent's data against its CRC64 (with checkCRCs) and returning where the data lies with those CRCs;
// it stops at the reader's first error, which the caller reports.
func decodeExtents(r *reader, bodyLen int, checkCRCs bool) ([]Extent, []crcSegment, error) {
	n := r.u32()
	if r.err == nil && uint64(n) > uint64(bodyLen)/27 { // each extent takes at least 27 bytes
		return nil, nil, corrupt("%d extents cannot fit in %d bytes", n, bodyLen)
	}
	var out []Extent
	var segs []crcSegment
	for i := uint32(0); i < n && r.err == nil; i++ {
		var e Extent
		e.Disk = r.str()
		e.Offset = r.i64()
		e.Length = r.i64()
		flags := r.u8()
		crc := r.u64()
		if flags > 2 {
			return nil, nil, corrupt("extent %d: unknown flags %#x", i, flags)
		}
		e.Zero, e.Hashes = flags == 1, flags == 2
		if !e.Zero {
			n := e.Length
			if e.Hashes {
				if e.Length < 0 || e.Length > MaxScrubBytes {
					return nil, nil, corrupt("extent %d: scrub length %d", i, e.Length)
				}
				n = hashBytes(e.Length)
			}
			if n < 0 || n > maxExtentLength {
				return nil, nil, corrupt("extent %d: length %d", i, e.Length)
			}
			at := r.off
			e.Data = r.bytes(int(n))
			if r.err != nil {
				break
			}
			if checkCRCs && crc64Of(e.Data) != crc {
				return nil, nil, corrupt("extent %d (%s at %d): CRC64 mismatch", i, e.Disk, e.Offset)
			}
			segs = append(segs, crcSegment{off: at, n: len(e.Data), crc: crc})
		}
		out = append(out, e)
	}
	return out, segs, nil
}

type reader struct {
	data []byte
	off  int
	err  error
}

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || r.off+n > len(r.data) {
		r.err = fmt.Errorf("truncated at byte %d (wanted %d more)", r.off, n)
		return nil
	}
	b := r.data[r.off : r.off+n]
	r.off += n
	return b
}

func (r *reader) u8() byte {
	if b := r.take(1); b != nil {
		return b[0]
	}
	return 0
}
func (r *reader) u32() uint32 {
	if b := r.take(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}
func (r *reader) u64() uint64 {
	if b := r.take(8); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}
func (r *reader) i64() int64 { return int64(r.u64()) }
func (r *reader) str() string {
	b := r.take(2)
	if b == nil {
		return ""
	}
	return string(r.take(int(binary.BigEndian.Uint16(b))))
}
func (r *reader) bytes(n int) []byte { return r.take(n) }

// descriptorFor is the descriptor the agent publishes for a stored payload.
func descriptorFor(b *Batch, journalName string, payload []byte) Descriptor {
	return descriptorOf(b, journalName, int64(len(payload)), crc64Of(payload))
}

// descriptorOf is the descriptor of a payload of size bytes whose CRC64 is known.
func descriptorOf(b *Batch, journalName string, size int64, crc uint64) Descriptor {
	return Descriptor{Group: b.Group, Seq: b.Seq, Kind: b.Kind, SourceTime: b.SourceTime, Consistency: b.Consistency, Baseline: b.Baseline,
		Journal: journalName, Bytes: size, CRC64: fmt.Sprintf("%016x", crc)}
}
