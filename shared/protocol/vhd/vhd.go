// Package vhd writes and reads the footer of a fixed VHD: the 512 bytes after a disk's data that make
// a raw image a "fixed hard disk image", the only format Azure imports into a managed disk (a virtual
// size that is a whole number of MiB, then the footer).
//
// The layout is the "Hard Disk Footer Format" of Microsoft's Virtual Hard Disk Image Format
// Specification (version 1.0, October 2006). Every field is big-endian; offsets in bytes:
//
//	offset size field
//	     0    8 Cookie               "conectix"
//	     8    4 Features             0x00000002 (the reserved bit, always set)
//	    12    4 File Format Version  0x00010000
//	    16    8 Data Offset          0xFFFFFFFFFFFFFFFF for a fixed disk
//	    24    4 Time Stamp           seconds since 2000-01-01 00:00:00 UTC
//	    28    4 Creator Application  "stby"
//	    32    4 Creator Version      major.minor, 16 bits each
//	    36    4 Creator Host OS      "Wi2k" (0x5769326B)
//	    40    8 Original Size        bytes of the virtual disk at creation
//	    48    8 Current Size         bytes of the virtual disk now
//	    56    4 Disk Geometry        cylinders (2 bytes), heads (1), sectors per track (1)
//	    60    4 Disk Type            2 = fixed
//	    64    4 Checksum             one's complement of the sum of the footer's bytes but these four
//	    68   16 Unique Id            a UUID
//	    84    1 Saved State          0
//	    85  427 Reserved             zeros
package vhd

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Sizes, and the values Standby writes.
const (
	FooterSize = 512
	SectorSize = 512
	MiB        = 1 << 20

	Cookie          = "conectix"
	Features        = 0x00000002 // the reserved bit, which the specification says is always set
	FormatVersion   = 0x00010000
	FixedDataOffset = ^uint64(0)
	DiskTypeFixed   = 2
	CreatorApp      = "stby"
	CreatorVersion  = 0x00010000 // 1.0
	HostOSWindows   = 0x5769326B // "Wi2k"
)

// Field offsets of the footer.
const (
	offCookie         = 0
	offFeatures       = 8
	offFormatVersion  = 12
	offDataOffset     = 16
	offTimeStamp      = 24
	offCreatorApp     = 28
	offCreatorVersion = 32
	offCreatorHostOS  = 36
	offOriginalSize   = 40
	offCurrentSize    = 48
	offGeometry       = 56
	offDiskType       = 60
	offChecksum       = 64
	offUniqueID       = 68
	offSavedState     = 84
)

// Epoch is the origin of the footer's time stamp.
var Epoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// ErrInvalid is what Parse and NewFixed wrap: the bytes are not the footer of a fixed VHD, or the size
// cannot be one.
var ErrInvalid = errors.New("not a fixed VHD footer")

// CHS is a disk geometry: cylinders, heads and sectors per track.
type CHS struct {
	Cylinders       uint16
	Heads           uint8
	SectorsPerTrack uint8
}

// Sectors is how many sectors the geometry addresses.
func (g CHS) Sectors() int64 {
	return int64(g.Cylinders) * int64(g.Heads) * int64(g.SectorsPerTrack)
}

// Footer is a hard disk footer, field by field. Bytes computes the checksum; Parse fills Checksum with
// the one it read (and verified).
type Footer struct {
	Cookie         [8]byte
	Features       uint32
	FormatVersion  uint32
	DataOffset     uint64
	TimeStamp      uint32 // seconds since Epoch
	CreatorApp     [4]byte
	CreatorVersion uint32
	CreatorHostOS  uint32
	OriginalSize   uint64
	CurrentSize    uint64
	Geometry       CHS
	DiskType       uint32
	Checksum       uint32
	UniqueID       [16]byte
	SavedState     uint8
}

// NewFixed is the footer of a fixed disk of size bytes (a positive whole number of MiB, as Azure
// requires), with the unique id and the creation time given.
func NewFixed(size int64, id [16]byte, t time.Time) (Footer, error) {
	if size <= 0 || size%MiB != 0 {
		return Footer{}, fmt.Errorf("%w: size %d is not a positive whole number of MiB", ErrInvalid, size)
	}
	secs := t.Sub(Epoch) / time.Second
	if secs < 0 || secs > 1<<32-1 {
		return Footer{}, fmt.Errorf("%w: time %s is outside the time stamp's range (2000 to 2136)", ErrInvalid, t.UTC().Format(time.RFC3339))
	}
	f := Footer{Features: Features, FormatVersion: FormatVersion, DataOffset: FixedDataOffset, TimeStamp: uint32(secs),
		CreatorVersion: CreatorVersion, CreatorHostOS: HostOSWindows, OriginalSize: uint64(size), CurrentSize: uint64(size),
		Geometry: Geometry(size), DiskType: DiskTypeFixed, UniqueID: id}
	copy(f.Cookie[:], Cookie)
	copy(f.CreatorApp[:], CreatorApp)
	f.Checksum = Checksum(f.encode())
	return f, nil
}

// Time is the footer's creation time.
func (f Footer) Time() time.Time { return Epoch.Add(time.Duration(f.TimeStamp) * time.Second) }

// Bytes is the footer as it is stored, its checksum computed.
func (f Footer) Bytes() [FooterSize]byte {
	b := f.encode()
	binary.BigEndian.PutUint32(b[offChecksum:], Checksum(b))
	return b
}

// encode lays the fields out with Checksum as it is in f.
func (f Footer) encode() [FooterSize]byte {
	var b [FooterSize]byte
	be := binary.BigEndian
	copy(b[offCookie:], f.Cookie[:])
	be.PutUint32(b[offFeatures:], f.Features)
	be.PutUint32(b[offFormatVersion:], f.FormatVersion)
	be.PutUint64(b[offDataOffset:], f.DataOffset)
	be.PutUint32(b[offTimeStamp:], f.TimeStamp)
	copy(b[offCreatorApp:], f.CreatorApp[:])
	be.PutUint32(b[offCreatorVersion:], f.CreatorVersion)
	be.PutUint32(b[offCreatorHostOS:], f.CreatorHostOS)
	be.PutUint64(b[offOriginalSize:], f.OriginalSize)
	be.PutUint64(b[offCurrentSize:], f.CurrentSize)
	be.PutUint16(b[offGeometry:], f.Geometry.Cylinders)
	b[offGeometry+2], b[offGeometry+3] = f.Geometry.Heads, f.Geometry.SectorsPerTrack
	be.PutUint32(b[offDiskType:], f.DiskType)
	be.PutUint32(b[offChecksum:], f.Checksum)
	copy(b[offUniqueID:], f.UniqueID[:])
	b[offSavedState] = f.SavedState
	return b
}

// Checksum is the specification's checksum of a footer: the one's complement of the sum of its bytes,
// the checksum field left out.
func Checksum(footer [FooterSize]byte) uint32 {
	var sum uint32
	for i, v := range footer {
		if i < offChecksum || i >= offChecksum+4 {
			sum += uint32(v)
		}
	}
	return ^sum
}

// Parse reads the footer of a fixed VHD (exactly FooterSize bytes, the last of the image) and checks
// its cookie, checksum, disk type, data offset and sizes; the error says which is wrong.
func Parse(data []byte) (Footer, error) {
	if len(data) != FooterSize {
		return Footer{}, fmt.Errorf("%w: %d bytes, a footer has %d", ErrInvalid, len(data), FooterSize)
	}
	b := [FooterSize]byte(data)
	be := binary.BigEndian
	var f Footer
	copy(f.Cookie[:], b[offCookie:])
	if string(f.Cookie[:]) != Cookie {
		return Footer{}, fmt.Errorf("%w: cookie %q, want %q", ErrInvalid, f.Cookie[:], Cookie)
	}
	f.Checksum = be.Uint32(b[offChecksum:])
	if sum := Checksum(b); sum != f.Checksum {
		return Footer{}, fmt.Errorf("%w: checksum 0x%08x, the bytes sum to 0x%08x", ErrInvalid, f.Checksum, sum)
	}
	f.Features, f.FormatVersion = be.Uint32(b[offFeatures:]), be.Uint32(b[offFormatVersion:])
	f.DataOffset, f.TimeStamp = be.Uint64(b[offDataOffset:]), be.Uint32(b[offTimeStamp:])
	copy(f.CreatorApp[:], b[offCreatorApp:])
	f.CreatorVersion, f.CreatorHostOS = be.Uint32(b[offCreatorVersion:]), be.Uint32(b[offCreatorHostOS:])
	f.OriginalSize, f.CurrentSize = be.Uint64(b[offOriginalSize:]), be.Uint64(b[offCurrentSize:])
	f.Geometry = CHS{Cylinders: be.Uint16(b[offGeometry:]), Heads: b[offGeometry+2], SectorsPerTrack: b[offGeometry+3]}
	f.DiskType = be.Uint32(b[offDiskType:])
	copy(f.UniqueID[:], b[offUniqueID:])
	f.SavedState = b[offSavedState]
	switch {
	case f.DiskType != DiskTypeFixed:
		return Footer{}, fmt.Errorf("%w: disk type %d (%s), want %d (fixed)", ErrInvalid, f.DiskType, diskTypeName(f.DiskType), DiskTypeFixed)
	case f.DataOffset != FixedDataOffset:
		return Footer{}, fmt.Errorf("%w: data offset 0x%x, a fixed disk has 0x%x", ErrInvalid, f.DataOffset, FixedDataOffset)
	case f.FormatVersion>>16 != FormatVersion>>16:
		return Footer{}, fmt.Errorf("%w: file format version 0x%08x, want major version 1", ErrInvalid, f.FormatVersion)
	case f.CurrentSize == 0 || f.CurrentSize%SectorSize != 0 || f.CurrentSize > 1<<62:
		return Footer{}, fmt.Errorf("%w: current size %d is not a positive whole number of 512-byte sectors", ErrInvalid, f.CurrentSize)
	}
	return f, nil
}

func diskTypeName(t uint32) string {
	switch t {
	case 0:
		return "none"
	case 2:
		return "fixed"
	case 3:
		return "dynamic"
	case 4:
		return "differencing"
	}
	return "reserved"
}

// Geometry is the CHS geometry the specification's algorithm ("CHS Calculation", Appendix) gives a
// disk of size bytes; disks past 65535×16×255 sectors (about 127 GiB) get that maximum geometry.
func Geometry(size int64) CHS {
	totalSectors := size / SectorSize
	if totalSectors > 65535*16*255 {
		totalSectors = 65535 * 16 * 255
	}
	var sectorsPerTrack, heads, cylinderTimesHeads int64
	if totalSectors >= 65535*16*63 {
		sectorsPerTrack, heads = 255, 16
		cylinderTimesHeads = totalSectors / sectorsPerTrack
	} else {
		sectorsPerTrack = 17
		cylinderTimesHeads = totalSectors / sectorsPerTrack
		heads = (cylinderTimesHeads + 1023) / 1024
		if heads < 4 {
			heads = 4
		}
		if cylinderTimesHeads >= heads*1024 || heads > 16 {
			sectorsPerTrack, heads = 31, 16
			cylinderTimesHeads = totalSectors / sectorsPerTrack
		}
		if cylinderTimesHeads >= heads*1024 {
			sectorsPerTrack, heads = 63, 16
			cylinderTimesHeads = totalSectors / sectorsPerTrack
		}
	}
	return CHS{Cylinders: uint16(cylinderTimesHeads / heads), Heads: uint8(heads), SectorsPerTrack: uint8(sectorsPerTrack)}
}

// NewID is a random unique id (a version 4 UUID's bytes).
func NewID() [16]byte {
	var id [16]byte
	rand.Read(id[:]) // never fails (crypto/rand)
	id[6], id[8] = id[6]&0x0f|0x40, id[8]&0x3f|0x80
	return id
}
