package replication

import "strings"

// Capture is how a disk's writes reach the group's stream, and the consistency that gives its
// recovery points. It is the source's kind: the API shows it on every disk, so that nobody takes a
// point of a scanned disk for a crash-consistent one.
type Capture struct {
	Disk string `json:"disk"`
	Mode string `json:"mode"`
	// CrashConsistent: every point of the group is a prefix of the disk's writes in the order they
	// completed, across all such disks of the group.
	CrashConsistent bool   `json:"crashConsistent"`
	Note            string `json:"note"`
}

// captures by source kind.
var captures = map[SourceKind]Capture{
	SourceNBD: {Mode: "nbd", CrashConsistent: true,
		Note: "every write goes through the agent's NBD export and joins the stream in completion order"},
	SourceAgent: {Mode: "agent", CrashConsistent: true,
		Note: "every write goes through the agent's write API and joins the stream in completion order"},
	SourceFile: {Mode: "file", CrashConsistent: false,
		Note: "not crash-consistent: changed blocks are found by hashing the disk every pass, and blocks read at different moments can mix a filesystem's journal of one moment with data of another"},
	SourceManaged: {Mode: "managed", CrashConsistent: false,
		Note: "agentless: each point is the disk as one incremental snapshot saw it, so consistent per disk but not across the group's disks (Azure makes that only through VM restore points, a few per hour); points come at most every 43 s (Azure allows 7 snapshots per disk per 5 minutes)"},
	SourcePageBlob: {Mode: "pageblob", CrashConsistent: false,
		Note: "consistent per disk at each snapshot the agent takes, not across the group's disks"},
}

// captureOf is the capture of a disk with source.
func captureOf(key, source string) Capture {
	kind, _, _ := strings.Cut(source, ":")
	c, ok := captures[SourceKind(kind)]
	if !ok {
		c = Capture{Mode: kind, Note: "unknown source kind"}
	}
	c.Disk = key
	return c
}

// Captures is every disk's capture, in spec order.
func (s *GroupSpec) Captures() []Capture {
	var out []Capture
	for _, d := range s.Disks() {
		c := captureOf(d.Key, d.Spec.Source)
		if d.Spec.Role == DiskRoleOS && d.Spec.SecurityType == "TrustedLaunch" {
			c.Note += ". " + trustedLaunchLoss
		}
		out = append(out, c)
	}
	return out
}

// trustedLaunchLoss says what a Trusted Launch VM loses in a failover: only its disks are replicated,
// not its VM guest state (the vTPM and the UEFI variables, which Azure keeps beside the OS disk and an
// ImportSecure creation would carry over).
const trustedLaunchLoss = "Trusted Launch: the VM's guest state (its vTPM and UEFI variables) is not replicated, so the failed-over VM starts with a new vTPM: anything sealed to the old one (a BitLocker or LUKS key protected by the TPM alone, measured-boot attestation) must be recovered another way, e.g. with the BitLocker recovery key"
