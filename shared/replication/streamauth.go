package replication

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc64"
	"strconv"
	"time"
)

// The change stream is authenticated per group: a group's key (made on enable, kept on its record, given
// only to its agents through the API) signs each stored payload (an HMAC-SHA256 trailer) and each
// descriptor (its mac field). Apply, restore and the agent's own recovery accept a group's payloads and
// descriptors only with a valid MAC, so that nobody able to send to the change hub or write the cache
// account — but without the key — can add, replace or reorder a group's writes. Groups enabled before
// keys existed have none and run unauthenticated.

// streamKeyBytes is the size of a group's stream key.
const streamKeyBytes = 32

// newStreamKey is a fresh random stream key, base64.
func newStreamKey() string {
	key := make([]byte, streamKeyBytes)
	rand.Read(key)
	return base64.StdEncoding.EncodeToString(key)
}

// DecodeStreamKey decodes a stream key ("" gives nil: unauthenticated).
func DecodeStreamKey(s string) ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	key, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(key) != streamKeyBytes {
		return nil, fmt.Errorf("stream key: want %d bytes, base64", streamKeyBytes)
	}
	return key, nil
}

const payloadMACSize = sha256.Size

func payloadMAC(key []byte, group string, seq int64, payload []byte) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte("standby-payload-v1\x00" + group + "\x00"))
	binary.Write(mac, binary.BigEndian, seq)
	mac.Write(payload)
	return mac.Sum(nil)
}

// SealPayload appends the payload's MAC under the group's key (nil key: the payload as it is).
func SealPayload(key []byte, group string, seq int64, payload []byte) []byte {
	if key == nil {
		return payload
	}
	return append(payload, payloadMAC(key, group, seq, payload)...)
}

// OpenPayload checks a stored payload's MAC and returns the payload without it (nil key: as it is).
func OpenPayload(key []byte, group string, seq int64, sealed []byte) ([]byte, error) {
	if key == nil {
		return sealed, nil
	}
	if len(sealed) < payloadMACSize {
		return nil, fmt.Errorf("%w: batch %d has no MAC", ErrCorrupt, seq)
	}
	payload, got := sealed[:len(sealed)-payloadMACSize], sealed[len(sealed)-payloadMACSize:]
	if !hmac.Equal(got, payloadMAC(key, group, seq, payload)) {
		return nil, fmt.Errorf("%w: batch %d's MAC does not verify: it is not this group's agent's", ErrCorrupt, seq)
	}
	return payload, nil
}

// DescriptorMAC is a descriptor's MAC under the group's key: every field but the MAC itself.
func DescriptorMAC(key []byte, d Descriptor) string {
	mac := hmac.New(sha256.New, key)
	for _, f := range []string{"standby-descriptor-v1", d.Group, strconv.FormatInt(d.Seq, 10), d.Kind, d.SourceTime.UTC().Format(time.RFC3339Nano),
		d.Journal, strconv.FormatInt(d.Bytes, 10), d.CRC64, d.Consistency, strconv.FormatBool(d.Baseline)} {
		mac.Write([]byte(f))
		mac.Write([]byte{0})
	}
	return hex.EncodeToString(mac.Sum(nil))
}

// Authentic reports whether the descriptor carries a valid MAC under key (nil key: every one is).
func (d Descriptor) Authentic(key []byte) bool {
	if key == nil {
		return true
	}
	want := DescriptorMAC(key, d)
	return hmac.Equal([]byte(d.MAC), []byte(want))
}

// SignedDescriptor is the descriptor of a stored (sealed) payload, with its MAC under key.
func SignedDescriptor(key []byte, b *Batch, payload []byte) Descriptor {
	return signed(key, descriptorFor(b, BatchBlobName(b.Group, b.Seq), payload))
}

func signed(key []byte, d Descriptor) Descriptor {
	if key != nil {
		d.MAC = DescriptorMAC(key, d)
	}
	return d
}

// SignBatch is a batch as an agent sends it: its journal payload, sealed, and its signed descriptor.
// The MAC goes into room the encoding left for it, and the descriptor's CRC64 is combined from the
// encoding's, so the payload is neither copied nor checksummed again.
func SignBatch(key []byte, b *Batch, compress bool) ([]byte, Descriptor, error) {
	raw, crc, err := encodeBatch(b, compress, payloadMACSize)
	if err != nil {
		return nil, Descriptor{}, err
	}
	payload := SealPayload(key, b.Group, b.Seq, raw)
	crc = crc64.Update(crc, crcTable, payload[len(raw):]) // the MAC
	return payload, signed(key, descriptorOf(b, BatchBlobName(b.Group, b.Seq), int64(len(payload)), crc)), nil
}
