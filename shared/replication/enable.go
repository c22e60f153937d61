package replication

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// The use cases of replication that the api and cutpoints functions call come as four services, one
// per subject, over the same Deps: Groups, Agents, Upkeep and Points. Every one is idempotent and safe
// to run again after a crash.

// Groups enables, changes, disables, resyncs and seeds groups, lists them and their history (enable.go,
// peers.go, quota.go, seed.go, targets.go).
type Groups struct {
	Deps
	// Targets makes the target resources on enable (nil: no compute configured, nothing to make).
	Targets TargetProvisioner
	// Exporter reads managed disks for a reprotect's seeding (nil: no compute configured).
	Exporter DiskExporter
	// MaxTargetBytes is the deployment's quota of replicated disk bytes (0: DefaultMaxTargetBytes).
	MaxTargetBytes int64
	// DefaultResourceGroup is the recovery resource group of a spec that names none: the one the
	// deployment made and granted the app its role in (StandbyRecoveryResourceGroup); "" leaves the
	// "<group>-asr" of TargetSpec.ResourceGroupName.
	DefaultResourceGroup string
}

// Agents serves a group's agents: heartbeats and their instructions, the target's block hashes for a
// checksum sync, the events they report, and the agent keys they present (heartbeat.go, agentkeys.go).
type Agents struct{ Deps }

// Upkeep is the timer's work on every group: points cut and pruned, RPO health and its alerts, the
// journal and the history pruned, target resources refreshed (upkeep.go, alerts.go, housekeeping.go).
type Upkeep struct {
	Deps
	// Targets refreshes the target resources made on enable (nil: no compute configured).
	Targets TargetProvisioner
	// Housekeepers prune what other domains keep for the deployment (housekeeping.go).
	Housekeepers []Housekeeper
	// Schedulers start what other domains run on a group's schedule (its drills), every tick;
	// EveryTick runs what other domains run on other schedules (plans' drills), every tick too.
	Schedulers []GroupScheduler
	EveryTick  []Housekeeper
}

// GroupScheduler starts what is due for a group at now; it returns a line per start.
type GroupScheduler func(ctx context.Context, group string, now time.Time) ([]string, error)

// Points reads a group's recovery points with the restorable window, and its RPO history (window.go,
// rpohistory.go).
type Points struct{ Deps }

// Deps are the ports and the clock every service of the package uses.
type Deps struct {
	State   StateStore
	Pages   PageStore    // nil: not configured
	Journal JournalStore // nil: not configured
	Log     *slog.Logger
	Now     func() time.Time
}

func (s *Deps) now() time.Time { return s.Now().UTC() }

// needStorage refuses a request when the target storage is not configured.
func (s *Deps) needStorage() error {
	if s.State == nil || s.Pages == nil {
		return fmt.Errorf("%w: the target storage (set StandbyTargetStorage)", ErrNotConfigured)
	}
	return nil
}

// enableOutcome says what Enable did.
type enableOutcome int

const (
	Enabled          enableOutcome = iota // a new group
	alreadyEnabled                        // the same spec again: nothing changed
	placementChanged                      // only where failovers place the VMs changed
)

// Enable enables replication of a group with spec. The group's rows are inserted first, marked as
// being created — of two concurrent first enables one inserts them, the other finds them and is
// answered against them — then its target disks are claimed and made (fixed VHDs of the source sizes),
// then the mark goes. A disk the group cannot have (another group's, an existing blob it was not
// given, one of another size) undoes the creation: nothing is left. A retry after a crash finishes it.
// The same spec again changes nothing; a spec that differs only in placement is applied in place; any
// other difference is a conflict naming the fields.
func (s *Groups) Enable(ctx context.Context, group string, spec GroupSpec) (*Group, enableOutcome, error) {
	return s.enable(ctx, group, spec, originOperator)
}

func (s *Groups) enable(ctx context.Context, group string, spec GroupSpec, origin origin) (*Group, enableOutcome, error) {
	if err := s.admissible(group); err != nil {
		return nil, 0, err
	}
	if spec.Target.ResourceGroup == "" && s.DefaultResourceGroup != "" {
		spec.Target.ResourceGroup = s.DefaultResourceGroup
	}
	spec.Normalize(group)
	if err := spec.Validate(); err != nil {
		return nil, 0, fmt.Errorf("%w: invalid group spec: %v", ErrInvalid, err)
	}
	existing, err := LoadGroup(ctx, s.State, group)
	if err == nil {
		return s.enableExistingFrom(ctx, existing, spec, origin)
	}
	if !errors.Is(err, ErrNoGroup) {
		return nil, 0, err
	}
	if err := s.reserveQuota(ctx, group, spec); err != nil {
		return nil, 0, err
	}
	g, outcome, err := s.create(ctx, group, spec, origin)
	if err != nil {
		s.releaseQuota(ctx, group)
	}
	return g, outcome, err
}

// create makes a new group (or answers against the one a concurrent request made first).
func (s *Groups) create(ctx context.Context, group string, spec GroupSpec, origin origin) (*Group, enableOutcome, error) {
	res, err := s.provisionTargets(ctx, group, spec)
	if err != nil {
		return nil, 0, err
	}
	g, err := createGroupFrom(ctx, s.State, group, spec, origin, s.now())
	if errors.Is(err, ErrConflict) { // a concurrent request enabled it first
		existing, err := LoadGroup(ctx, s.State, group)
		if err != nil {
			return nil, 0, err
		}
		return s.enableExistingFrom(ctx, existing, spec, origin)
	}
	if err != nil {
		return nil, 0, err
	}
	return s.finishCreation(ctx, g, res)
}

// finishCreation makes the target disks of a group being created and marks it created; a disk it
// cannot have undoes the creation.
func (s *Groups) finishCreation(ctx context.Context, g *Group, res TargetResources) (*Group, enableOutcome, error) {
	group := g.Record.Group()
	err := s.Pages.EnsureContainer(ctx, g.Spec.Target.Container)
	var done []made
	for _, d := range g.Spec.Disks() {
		if err == nil {
			var m made
			m, err = s.ensureTargetDisk(ctx, g, d)
			done = append(done, m)
		}
	}
	if errors.Is(err, ErrConflict) || errors.Is(err, ErrInvalid) {
		if uerr := s.undoCreation(ctx, g, done); uerr != nil {
			s.Log.Warn("undoing a refused enable", "group", group, "err", uerr)
		}
	}
	if err != nil {
		return nil, 0, err
	}
	if g.Record, err = UpdateGroup(ctx, s.State, group, StateRow, func(r *GroupRecord) error {
		r.Creating = false
		if res.ResourceGroupID != "" {
			r.Resources = res
		}
		return nil
	}); err != nil {
		return nil, 0, err
	}
	s.Log.Info("group enabled", "group", group, "vms", len(g.Spec.VMs), "disks", len(g.Spec.Disks()))
	return g, Enabled, nil
}

// made is what enabling did for one disk: claimed its blob just now, created it.
type made struct {
	ref              DiskRef
	claimed, created bool
}

// undoCreation removes what a refused enable made — the blobs it created, the claims it took — and the
// group's rows; what was there before stays.
func (s *Groups) undoCreation(ctx context.Context, g *Group, done []made) error {
	for _, m := range done {
		if m.created {
			if err := s.Pages.Delete(ctx, m.ref); err != nil && !errors.Is(err, ErrNotFound) {
				return err
			}
		}
		if m.claimed {
			if err := releaseBlob(ctx, s.State, m.ref, g.Record.Group()); err != nil {
				return err
			}
		}
	}
	return DeleteGroupRows(ctx, s.State, g.Record.Group())
}

// enableExisting answers an Enable of a group that exists.
func (s *Groups) enableExisting(ctx context.Context, existing *Group, spec GroupSpec) (*Group, enableOutcome, error) {
	group := existing.Record.Group()
	conflicts := existing.Spec.Conflicts(&spec)
	if existing.Record.Creating && len(conflicts) == 0 { // a retry, or a concurrent twin: finish it
		res, err := s.provisionTargets(ctx, group, spec)
		if err != nil {
			return nil, 0, err
		}
		return s.finishCreation(ctx, existing, res)
	}
	if len(conflicts) > 0 && existing.Spec.OnlyPlacementDiffers(&spec) {
		res, err := s.provisionTargets(ctx, group, spec)
		if err != nil {
			return nil, 0, err
		}
		g, err := updatePlacement(ctx, s.State, group, existing.Record.Claim, spec, res, s.now())
		if err == nil {
			s.Log.Info("group placement changed", "group", group, "changes", strings.Join(conflicts, "; "))
		}
		return g, placementChanged, err
	}
	if len(conflicts) > 0 {
		detail := strings.Join(conflicts, "; ")
		if existing.Record.State == StateFailedBack {
			detail = "the group failed back (its replication this way ended): DELETE it with keepData=false, then enable it again; " + detail
		}
		return nil, 0, fmt.Errorf("%w: group exists with a different spec: %s", ErrConflict, detail)
	}
	if existing.Record.State == StateDisabled {
		return nil, 0, fmt.Errorf("%w: group is disabled: delete it with keepData=false before enabling it again", ErrConflict)
	}
	if s.Targets != nil && existing.Record.Resources.State != TargetsSucceeded && !existing.Record.FailedOver() {
		// Enabling again retries the target resources (a group enabled before they were made, or
		// whose deployment failed).
		res, err := s.provisionTargets(ctx, group, spec)
		if err != nil {
			return nil, 0, err
		}
		if existing.Record, err = s.recordTargets(ctx, group, res); err != nil {
			return nil, 0, err
		}
	}
	return existing, alreadyEnabled, nil
}

// ensureTargetDisk creates a disk's target page blob, a fixed VHD of the disk's size, or checks a given
// one (an original disk: it must exist and be a fixed VHD of the disk's size).
func (s *Groups) ensureTargetDisk(ctx context.Context, g *Group, d DiskRefSpec) (made, error) {
	ref, group := g.TargetDisk(d.Key), g.Record.Group()
	_, given := g.Spec.Target.Disks[d.Key]
	m := made{ref: ref}
	var err error
	if m.claimed, err = claimBlob(ctx, s.State, ref, group, given, s.now()); err != nil {
		return m, fmt.Errorf("target disk %s: %w", d.Key, err)
	}
	if given {
		err := CheckFixedVHD(ctx, s.Pages, ref, d.Spec.SizeBytes)
		if errors.Is(err, ErrNotFound) {
			return m, fmt.Errorf("%w: target disk missing: target.disks[%s]: %s does not exist", ErrConflict, d.Key, ref)
		}
		if errors.Is(err, ErrConflict) {
			return m, fmt.Errorf("%w: target disk differs: target.disks[%s]: %v", ErrConflict, d.Key, err)
		}
		return m, err
	}
	_, err = s.Pages.Size(ctx, ref)
	switch {
	case err == nil && m.claimed: // a blob already there, claimed by nobody, is never taken silently
		return m, fmt.Errorf("%w: target disk exists: %s is no group's: name it in target.disks to replicate into it", ErrConflict, ref)
	case errors.Is(err, ErrNotFound):
		m.created = true
	case err != nil:
		return m, err
	}
	err = ensureFixedVHD(ctx, s.Pages, ref, d.Spec.SizeBytes, s.now())
	if errors.Is(err, ErrConflict) {
		return m, fmt.Errorf("%w: target disk exists: %v", ErrConflict, err)
	}
	return m, err
}

// Load is one group, or ErrNoGroup.
func (s *Deps) Load(ctx context.Context, group string) (*Group, error) {
	if err := s.admissible(group); err != nil {
		return nil, err
	}
	return LoadGroup(ctx, s.State, group)
}

// StreamKeyOf is the group's stream key as the API gives it to the group's agent (empty for a group
// made before keys).
func (s *Agents) StreamKeyOf(ctx context.Context, group string) (string, error) {
	g, err := s.Load(ctx, group)
	if err != nil {
		return "", err
	}
	return g.Record.StreamKey, nil
}

// admissible refuses a request naming a group outside the grammar, or made while the storage is not
// configured.
func (s *Deps) admissible(group string) error {
	if err := CheckGroupName(group); err != nil {
		return err
	}
	return s.needStorage()
}

// Disable stops replicating a group. keep (the operator's keepData) leaves the target disks and the
// recovery state: the group stays visible as Disabled and apply drops its batches. Otherwise the group's
// data goes too (RemoveGroup) and Disable returns a nil group.
func (s *Groups) Disable(ctx context.Context, group string, keep bool) (*Group, error) {
	g, err := s.Load(ctx, group)
	if err != nil {
		return nil, err
	}
	if !keep && s.Journal == nil {
		return nil, fmt.Errorf("%w: removing a group's data removes its journal: set StandbyCacheStorage", ErrNotConfigured)
	}
	rec, err := UpdateGroup(ctx, s.State, group, StateRow, func(r *GroupRecord) error {
		return r.Move(StateDisabled, "replication disabled by the operator", s.now())
	})
	if err != nil {
		return nil, err
	}
	g.Record = rec
	if keep {
		s.Log.Info("group disabled, data kept", "group", group)
		return g, nil
	}
	if err := RemoveGroup(ctx, s.State, s.Pages, s.Journal, g); err != nil {
		return nil, fmt.Errorf("removing the data of %s: %w", group, err)
	}
	s.Log.Info("group disabled, data removed", "group", group)
	return nil, nil
}

// Resync asks the agent for a checksum resync: the group stops at its watermark until the agent's
// resync batch arrives. A group already waiting for one is left as it is.
func (s *Groups) Resync(ctx context.Context, group string) (GroupRecord, error) {
	if err := s.admissible(group); err != nil { // UpdateGroup answers ErrNoGroup for a missing one
		return GroupRecord{}, err
	}
	return UpdateGroup(ctx, s.State, group, StateRow, func(r *GroupRecord) error {
		if r.State == StateResyncRequired {
			return ErrUnchanged
		}
		if r.ReplicationStopped() { // failed over, running the other way, or disabled: nothing to resync this way
			return fmt.Errorf("%w: the group is %s: a resync needs a group replicating this way", ErrState, r.State)
		}
		return r.Move(StateResyncRequired, "resync requested by the operator", s.now())
	})
}

// GroupStatus is a group with what its retention holds now.
type GroupStatus struct {
	*Group
	Points                   int
	OldestPoint, NewestPoint time.Time
	// Scrubs are the scrub's state, a record per disk scrubbed so far.
	Scrubs []ScrubRecord
}

// Status is one group with its retention window.
func (s *Groups) Status(ctx context.Context, group string) (GroupStatus, error) {
	g, points, err := s.loadWithPoints(ctx, group)
	if err != nil {
		return GroupStatus{}, err
	}
	st := GroupStatus{Group: g, Points: len(points)}
	if n := len(points); n > 0 { // newest first
		st.NewestPoint, st.OldestPoint = points[0].SourceTime, points[n-1].SourceTime
	}
	st.Scrubs, err = ListScrubs(ctx, s.State, group)
	return st, err
}

// loadWithPoints is one group and its recovery points, newest first.
func (s *Deps) loadWithPoints(ctx context.Context, group string) (*Group, []RecoveryPoint, error) {
	g, err := s.Load(ctx, group)
	if err != nil {
		return nil, nil, err
	}
	points, err := ListPoints(ctx, s.State, group)
	return g, points, err
}

// Groups lists every group.
func (s *Groups) List(ctx context.Context) ([]*Group, error) {
	if err := s.needStorage(); err != nil {
		return nil, err
	}
	names, err := GroupNames(ctx, s.State)
	if err != nil {
		return nil, err
	}
	var out []*Group
	for _, name := range names {
		g, err := LoadGroup(ctx, s.State, name)
		if errors.Is(err, ErrNoGroup) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, nil
}
