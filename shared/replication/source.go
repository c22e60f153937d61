package replication

import (
	"fmt"
	"strings"
)

// SourceKind is how a disk's writes reach the group's stream: one value per capture mechanism. The
// agent has one file per kind (shared/agent/source_<kind>.go); capture.go says what consistency each
// gives.
type SourceKind string

const (
	// SourceNBD: a disk image or block device the agent serves as an NBD export, every write captured
	// in completion order ("nbd:<path>").
	SourceNBD SourceKind = "nbd"
	// SourceAgent: writes arrive through the agent's write API ("agent").
	SourceAgent SourceKind = "agent"
	// SourceFile: a disk image or block device scanned by hashing; not crash-consistent ("file:<path>").
	SourceFile SourceKind = "file"
	// SourceManaged: agentless, from the managed disk's incremental snapshots ("managed:<resource id>").
	SourceManaged SourceKind = "managed"
	// SourcePageBlob: a page blob in the source account, diffed between snapshots ("pageblob:<url>").
	SourcePageBlob SourceKind = "pageblob"
)

// SourceKinds are every kind, in the order the grammar names them.
var SourceKinds = []SourceKind{SourceNBD, SourceAgent, SourceFile, SourceManaged, SourcePageBlob}

// Source is a disk's source, parsed: its kind and what it names (a path, a URL, a resource id; nothing
// for agent).
type Source struct {
	Kind SourceKind
	Ref  string
}

// errSourceGrammar is the grammar every refusal of a source names.
const errSourceGrammar = "want nbd:<path> (every write captured through the agent's NBD export), agent, managed:<disk resource id> (agentless, from incremental snapshots: consistent per disk only), file:<path> (scanned: not crash-consistent) or pageblob:<url>"

// ParseSource parses a disk's source, refusing anything outside the grammar.
func ParseSource(s string) (Source, error) {
	if s == string(SourceAgent) {
		return Source{Kind: SourceAgent}, nil
	}
	kind, ref, _ := strings.Cut(s, ":")
	src := Source{Kind: SourceKind(kind), Ref: ref}
	switch {
	case (src.Kind == SourceFile || src.Kind == SourceNBD) && ref != "":
	case src.Kind == SourcePageBlob && strings.ContainsAny(ref, "?#"):
		// The agent reads the blob with the source account's own credentials (StandbySourceStorage): a
		// SAS in a spec would only be stored, shown and sent to the peer.
		return Source{}, fmt.Errorf("a pageblob: source names the blob only (%s?…): the agent reads it with the source account's credentials (StandbySourceStorage), so leave out the query", ref[:strings.IndexAny(ref, "?#")])
	case src.Kind == SourcePageBlob && (strings.HasPrefix(ref, "https://") || strings.HasPrefix(ref, "http://")):
	case src.Kind == SourceManaged && managedDiskID.MatchString(ref):
	default:
		return Source{}, fmt.Errorf("%q, %s", s, errSourceGrammar)
	}
	return src, nil
}

// String is the source as a spec writes it.
func (s Source) String() string {
	if s.Kind == SourceAgent {
		return string(SourceAgent)
	}
	return string(s.Kind) + ":" + s.Ref
}

// OnVM says the agent reads the source on the VM it runs on (file:, nbd:), so only its own
// configuration may name the path.
func (s Source) OnVM() bool { return s.Kind == SourceFile || s.Kind == SourceNBD }

// Snapshotted says the source is captured by diffing its snapshots (pageblob:, managed:).
func (s Source) Snapshotted() bool { return s.Kind == SourcePageBlob || s.Kind == SourceManaged }

// Parsed is the disk's source. A spec that passed Validate always parses; one that did not gives a
// Source of no known kind, which every capture refuses.
func (d DiskSpec) Parsed() Source {
	src, err := ParseSource(d.Source)
	if err != nil {
		return Source{Kind: SourceKind("invalid"), Ref: d.Source}
	}
	return src
}
