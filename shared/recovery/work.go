package recovery

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// JobWork is the steps' shared state between messages. It is stored as one map (Table storage keeps it
// as one JSON property, and rows written by earlier versions read the same); its entries are read and
// written only through these methods, so each has one name and one format.
type JobWork map[string]string

// The entries' keys: fixed names, or a prefix and a disk key, group or action name.
const (
	workReplayTime    = "time"          // the point in time the journal is replayed to
	workEffectiveSeq  = "effectiveSeq"  // what the replay reached
	workEffectiveTime = "effectiveTime" // and the time of its last write
	workSource        = "source:"       // + disk key: where a reprotect's agent reads the disk
	workChild         = "child:"        // + group: the group job a plan job started
	workAck           = "ack:"          // + action: when an operator acknowledged a manual action
	workAction        = "action:"       // + action: how a boot group's action ended
	workChecksDone    = "checksDone"    // how many of a drill's checks have run
	workCleanup       = "cleanup:"      // + group: the cleanup job a plan drill started
	workDrillSlot     = "drillSlot"     // the schedule's slot a drill runs for
)

// SetCleanup records the cleanup job a plan drill started on a group.
func (w JobWork) SetCleanup(group, jobID string) { w[workCleanup+group] = jobID }

// Cleanups are the plan drill's cleanup jobs by group.
func (w JobWork) Cleanups() map[string]string { return w.prefixed(workCleanup) }

// ChecksDone is how many of the drill's checks have run.
func (w JobWork) ChecksDone() int {
	n, _ := strconv.Atoi(w[workChecksDone])
	return max(n, 0)
}

// SetChecksDone records how many of the drill's checks have run.
func (w JobWork) SetChecksDone(n int) { w[workChecksDone] = strconv.Itoa(n) }

// SetDrillSlot records the schedule's slot a drill runs for.
func (w JobWork) SetDrillSlot(slot time.Time) { w[workDrillSlot] = slot.UTC().Format(time.RFC3339) }

// DrillSlot is that slot (zero: a drill on request).
func (w JobWork) DrillSlot() time.Time {
	t, _ := time.Parse(time.RFC3339, w[workDrillSlot])
	return t
}

// SetReplayTime records the point in time the job's disks are replayed to.
func (w JobWork) SetReplayTime(at time.Time) { w[workReplayTime] = at.Format(time.RFC3339Nano) }

// ReplayTime is that time (ok false: the job restores a recovery point as it is).
func (w JobWork) ReplayTime() (time.Time, bool) {
	s, ok := w[workReplayTime]
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	return t, err == nil
}

// SetEffective records what the replay reached: the last sequence and its write's time.
func (w JobWork) SetEffective(seq int64, at time.Time) {
	w[workEffectiveSeq], w[workEffectiveTime] = fmt.Sprint(seq), at.Format(time.RFC3339Nano)
}

// EffectiveTime is the replay's last write's time, as recorded (ok false: no replay).
func (w JobWork) EffectiveTime() (string, bool) {
	s, ok := w[workEffectiveTime]
	return s, ok
}

// SetSource records where a reprotect's agent reads a disk.
func (w JobWork) SetSource(disk, source string) { w[workSource+disk] = source }

// Sources are the reprotect's sources by disk key.
func (w JobWork) Sources() map[string]string { return w.prefixed(workSource) }

// SetChild records the group job a plan job started.
func (w JobWork) SetChild(group, jobID string) { w[workChild+group] = jobID }

// Children are the plan job's group jobs by group.
func (w JobWork) Children() map[string]string { return w.prefixed(workChild) }

// Ack is when an operator acknowledged a manual action ("" not yet).
func (w JobWork) Ack(action string) string { return w[workAck+action] }

// SetAck records the acknowledgement of a manual action.
func (w JobWork) SetAck(action string, at time.Time) {
	w[workAck+action] = at.UTC().Format(time.RFC3339)
}

// ActionDone is how a boot group's action ended ("" not yet).
func (w JobWork) ActionDone(action string) string { return w[workAction+action] }

// SetActionDone records how a boot group's action ended.
func (w JobWork) SetActionDone(action, how string) { w[workAction+action] = how }

func (w JobWork) prefixed(prefix string) map[string]string {
	out := map[string]string{}
	for k, v := range w {
		if rest, ok := strings.CutPrefix(k, prefix); ok {
			out[rest] = v
		}
	}
	return out
}
