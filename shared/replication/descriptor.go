package replication

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"time"
)

// Descriptor kinds on the change stream.
const (
	KindBatch  = "batch"  // a change batch whose payload is in the journal
	KindMarker = "marker" // a consistency marker: snapshot every disk of the group here
	KindResync = "resync" // a resync starts here: the stream before it no longer matters
	KindScrub  = "scrub"  // the source's block hashes of a range here: apply checks the target against them
)

// Descriptor is the small JSON event the agent publishes for each change batch or marker (the payload
// itself stays in the journal: Event Hubs caps an event at 1 MB).
type Descriptor struct {
	Group      string    `json:"group"`
	Seq        int64     `json:"seq"`
	Kind       string    `json:"kind"`
	SourceTime time.Time `json:"sourceTime"`
	// Journal is the payload's blob name in the cache account (batches only).
	Journal string `json:"journal,omitempty"`
	// Bytes is the payload size (batches only).
	Bytes int64 `json:"bytes,omitempty"`
	// crc64Of is the payload checksum, ECMA polynomial, hex (batches only).
	CRC64 string `json:"crc64,omitempty"`
	// Consistency is "crash" or "app" (markers only).
	Consistency string `json:"consistency,omitempty"`
	// Baseline: this marker ends initial replication or a resync.
	Baseline bool `json:"baseline,omitempty"`
	// MAC authenticates the descriptor under the group's stream key (streamauth.go), hex.
	MAC string `json:"mac,omitempty"`
}

var groupName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// ValidGroupName reports whether name can name a consistency group: it becomes part of container,
// blob and table key names, so it follows the strictest of their rules (lowercase, digits, hyphens,
// 1–63 characters, no leading or trailing hyphen).
func ValidGroupName(name string) error {
	if !groupName.MatchString(name) {
		return fmt.Errorf("group %q must be 1-63 lowercase letters, digits or hyphens, not starting or ending with a hyphen", name)
	}
	return nil
}

// CheckGroupName refuses a request naming a group outside the grammar (ErrInvalid).
func CheckGroupName(name string) error {
	if err := ValidGroupName(name); err != nil {
		return fmt.Errorf("%w: invalid group name: %v", ErrInvalid, err)
	}
	return nil
}

// MaxDescriptorBytes bounds an event that can be a descriptor: every field is bounded (the longest
// valid one is under 600 bytes), so anything longer is refused before it is parsed.
const MaxDescriptorBytes = 2 << 10

// DecodeDescriptor parses and validates one descriptor; the error names the offending field.
func DecodeDescriptor(data []byte) (Descriptor, error) {
	var d Descriptor
	if len(data) > MaxDescriptorBytes {
		return d, fmt.Errorf("descriptor of %d bytes, more than the %d any descriptor takes", len(data), MaxDescriptorBytes)
	}
	if err := DecodeJSON(data, &d, "descriptor", "the descriptor shape"); err != nil {
		return d, err
	}
	return d, d.Validate()
}

// DecodeJSON decodes one JSON object of into's shape, refusing unknown fields and trailing data. The
// error says what (a descriptor, a body) is not valid JSON of which shape.
func DecodeJSON(data []byte, into any, what, shape string) error {
	if err := checkJSONKeys(data); err != nil {
		return fmt.Errorf("%s is not valid JSON of %s: %w", what, shape, err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		return fmt.Errorf("%s is not valid JSON of %s: %w", what, shape, err)
	}
	if dec.More() {
		return fmt.Errorf("%s has trailing data after the JSON object", what)
	}
	return nil
}

// Validate checks the descriptor's fields.
func (d Descriptor) Validate() error {
	if err := ValidGroupName(d.Group); err != nil {
		return fmt.Errorf("descriptor field group: %w", err)
	}
	if d.Seq < 1 {
		return fmt.Errorf("descriptor field seq: %d, sequence numbers start at 1", d.Seq)
	}
	if d.SourceTime.IsZero() {
		return fmt.Errorf("descriptor field sourceTime: missing")
	}
	if d.MAC != "" && len(d.MAC) != 64 {
		return fmt.Errorf("descriptor field mac: %d characters, want 64 hex digits", len(d.MAC))
	}
	// Every item of the stream is stored in the journal (markers and resyncs too), and apply reads it by
	// group and sequence: the name, when given, is the one both imply, nothing else.
	if want := BatchBlobName(d.Group, d.Seq); d.Journal != "" && d.Journal != want {
		return fmt.Errorf("descriptor field journal: %q, want %q", Truncate(d.Journal, 100), want)
	}
	switch d.Kind {
	case KindBatch:
		if d.Journal == "" {
			return fmt.Errorf("descriptor field journal: a batch must name its journal blob")
		}
		if d.Bytes < 0 {
			return fmt.Errorf("descriptor field bytes: %d is negative", d.Bytes)
		}
		if len(d.CRC64) != 16 {
			return fmt.Errorf("descriptor field crc64: %q is not 16 hex digits", d.CRC64)
		}
	case KindMarker:
		if d.Consistency != "crash" && d.Consistency != "app" {
			return fmt.Errorf("descriptor field consistency: %q, want crash or app", d.Consistency)
		}
	case KindResync, KindScrub:
	default:
		return fmt.Errorf("descriptor field kind: %q, want batch, marker, resync or scrub", d.Kind)
	}
	return nil
}

// SeqKey is a sequence number as a row key that sorts in numeric order.
func SeqKey(seq int64) string { return fmt.Sprintf("%020d", seq) }
