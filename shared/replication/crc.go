package replication

import "hash/crc64"

// Every byte of a batch is covered by three CRC64s — its extent's, the body's and, with the header and
// MAC, the whole payload's (the descriptor's) — but is checksummed once: the longer CRCs are combined
// from the extents' (zlib's crc32_combine, for CRC-64/ECMA), so encoding or verifying a batch passes
// over its data once for CRCs and once for the MAC.

var crcTable = crc64.MakeTable(crc64.ECMA)

// crc64Of is the checksum used for payloads and extents (ECMA polynomial).
func crc64Of(data []byte) uint64 { return crc64.Checksum(data, crcTable) }

// zeroOps[k] is the GF(2) operator that appends 2^k zero bytes to a CRC's register.
var zeroOps = func() (ops [64][64]uint64) {
	var one [64]uint64 // one zero bit: shift right, folding in the reflected polynomial
	one[0] = crc64.ECMA
	for n, row := 1, uint64(1); n < 64; n, row = n+1, row<<1 {
		one[n] = row
	}
	op := one
	for i := 0; i < 3; i++ { // 8 bits: one byte
		op = gf2Square(&op)
	}
	for k := range ops {
		ops[k] = op
		op = gf2Square(&op)
	}
	return ops
}()

func gf2Times(mat *[64]uint64, vec uint64) uint64 {
	var sum uint64
	for i := 0; vec != 0; i, vec = i+1, vec>>1 {
		if vec&1 != 0 {
			sum ^= mat[i]
		}
	}
	return sum
}

func gf2Square(mat *[64]uint64) (sq [64]uint64) {
	for n := range sq {
		sq[n] = gf2Times(mat, mat[n])
	}
	return sq
}

// crcCombine is the CRC64 of A followed by B, from crcA, crcB and B's length.
func crcCombine(crcA, crcB uint64, lenB int64) uint64 {
	for k := 0; lenB > 0; k, lenB = k+1, lenB>>1 {
		if lenB&1 != 0 {
			crcA = gf2Times(&zeroOps[k], crcA)
		}
	}
	return crcA ^ crcB
}

// crcSegment is a stretch of a buffer whose CRC64 is already known.
type crcSegment struct {
	off, n int
	crc    uint64
}

// crcWithSegments is the CRC64 of buf, whose segments (in order, not overlapping) are not read again.
func crcWithSegments(buf []byte, segs []crcSegment) uint64 {
	crc, at := uint64(0), 0
	for _, s := range segs {
		crc = crc64.Update(crc, crcTable, buf[at:s.off])
		crc = crcCombine(crc, s.crc, int64(s.n))
		at = s.off + s.n
	}
	return crc64.Update(crc, crcTable, buf[at:])
}
