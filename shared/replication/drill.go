package replication

import (
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/standby-dr/standby/shared/protocol/ncrontab"
)

// DrillSpec is a group's drill: when it runs by itself, the point it fails over to, and the checks
// that prove the workload came back. A drill is a test failover to that point in the isolated test
// network, every VM healthy, the checks, and a cleanup that always runs.
type DrillSpec struct {
	// Schedule is a five-field NCRONTAB expression in UTC ({minute} {hour} {day} {month}
	// {day-of-week}): the timer starts a drill once per slot ("" for none: drills on request only).
	Schedule string `json:"schedule,omitempty"`
	// Point is the drill's recovery point choice (as a failover's: latestProcessed by default).
	Point  string       `json:"point,omitempty"`
	Checks []DrillCheck `json:"checks,omitempty"`
	// ReadinessDays: a drill must have succeeded within this many days, or the group's readiness
	// alert is raised (default 180: Site Recovery advises a drill every six months).
	ReadinessDays int `json:"readinessDays,omitempty"`
}

// DrillCheck is one check of a drill: a command run in a failed-over VM with its expected exit code
// and, optionally, a pattern its output must match; or an HTTP probe of a VM's private address, run
// from VM (the isolated test network is reachable only from inside).
type DrillCheck struct {
	Name           string     `json:"name"`
	VM             string     `json:"vm"`
	Command        string     `json:"command,omitempty"`
	ExpectExitCode int        `json:"expectExitCode,omitempty"`
	ExpectOutput   string     `json:"expectOutput,omitempty"` // an RE2 expression the output must match
	HTTP           *HTTPProbe `json:"http,omitempty"`
	TimeoutSeconds int        `json:"timeoutSeconds,omitempty"` // default 60
}

// HTTPProbe is an HTTP GET of http://<VM's private address>:<Port><Path>.
type HTTPProbe struct {
	VM           string `json:"vm"`
	Port         int    `json:"port"`
	Path         string `json:"path,omitempty"`         // "/" if empty
	ExpectStatus int    `json:"expectStatus,omitempty"` // 200 if 0
}

// Bounds of a drill's spec.
const (
	MaxDrillChecks         = 16
	MaxCheckCommandBytes   = 4096
	MaxCheckPatternBytes   = 256
	MaxCheckTimeoutSeconds = 300
	DefaultCheckTimeout    = 60 * time.Second
	DefaultReadinessDays   = 180
	maxReadinessDays       = 3660
)

var (
	checkName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$`)
	// probePath is a URL path the probe script can carry without quoting trouble: no spaces, quotes,
	// '$', '`', '\' or ';'.
	probePath    = regexp.MustCompile(`^/[A-Za-z0-9._~/%=&?+,:@-]{0,255}$`)
	pointGrammar = regexp.MustCompile(`^[A-Za-z0-9:.+_-]{1,64}$`)
)

// Normalize fills the checks' defaults.
func (d *DrillSpec) Normalize() {
	if d.ReadinessDays == 0 {
		d.ReadinessDays = DefaultReadinessDays
	}
	for i := range d.Checks {
		c := &d.Checks[i]
		if c.TimeoutSeconds == 0 {
			c.TimeoutSeconds = int(DefaultCheckTimeout / time.Second)
		}
		if c.HTTP != nil {
			if c.HTTP.Path == "" {
				c.HTTP.Path = "/"
			}
			if c.HTTP.ExpectStatus == 0 {
				c.HTTP.ExpectStatus = 200
			}
		}
	}
}

// Timeout is the check's timeout.
func (c DrillCheck) Timeout() time.Duration { return time.Duration(c.TimeoutSeconds) * time.Second }

// validate checks the drill against the group's VMs; the error names the field.
func (d *DrillSpec) validate(vms []VMSpec) error {
	return d.Validate(func(name string) bool {
		return slices.ContainsFunc(vms, func(vm VMSpec) bool { return vm.Name == name })
	})
}

// Validate checks the drill, isVM saying which names its checks may run in (a group's VM names, or a
// plan's "group/vm"); the error names the field.
func (d *DrillSpec) Validate(isVM func(name string) bool) error {
	if d.Schedule != "" {
		if _, err := ncrontab.Parse(d.Schedule); err != nil {
			return fmt.Errorf("drill.schedule: %v", err)
		}
	}
	if d.Point != "" && !pointGrammar.MatchString(d.Point) {
		return fmt.Errorf("drill.point: %q is not a recovery point choice (latestProcessed, latest, a point's id or an RFC 3339 time)", d.Point)
	}
	if d.ReadinessDays < 0 || d.ReadinessDays > maxReadinessDays {
		return fmt.Errorf("drill.readinessDays: %d is outside 1..%d", d.ReadinessDays, maxReadinessDays)
	}
	if len(d.Checks) > MaxDrillChecks {
		return fmt.Errorf("drill.checks: %d checks, at most %d", len(d.Checks), MaxDrillChecks)
	}
	names := map[string]bool{}
	for i, c := range d.Checks {
		at := fmt.Sprintf("drill.checks[%d]", i)
		switch {
		case !checkName.MatchString(c.Name):
			return fmt.Errorf("%s.name: %q: 1-40 lowercase letters, digits or '-'", at, c.Name)
		case names[c.Name]:
			return fmt.Errorf("%s.name: %q is used twice", at, c.Name)
		case !isVM(c.VM):
			return fmt.Errorf("%s.vm: %q is none of the group's VMs", at, c.VM)
		case (c.Command == "") == (c.HTTP == nil):
			return fmt.Errorf("%s: a check is a command or an http probe, exactly one", at)
		case len(c.Command) > MaxCheckCommandBytes:
			return fmt.Errorf("%s.command: %d bytes, at most %d", at, len(c.Command), MaxCheckCommandBytes)
		case c.ExpectExitCode < 0 || c.ExpectExitCode > 255:
			return fmt.Errorf("%s.expectExitCode: %d is outside 0..255", at, c.ExpectExitCode)
		case len(c.ExpectOutput) > MaxCheckPatternBytes:
			return fmt.Errorf("%s.expectOutput: %d bytes, at most %d", at, len(c.ExpectOutput), MaxCheckPatternBytes)
		case c.TimeoutSeconds < 1 || c.TimeoutSeconds > MaxCheckTimeoutSeconds:
			return fmt.Errorf("%s.timeoutSeconds: %d is outside 1..%d", at, c.TimeoutSeconds, MaxCheckTimeoutSeconds)
		}
		names[c.Name] = true
		if c.ExpectOutput != "" {
			if _, err := regexp.Compile(c.ExpectOutput); err != nil {
				return fmt.Errorf("%s.expectOutput: %v", at, err)
			}
		}
		if p := c.HTTP; p != nil {
			switch {
			case !isVM(p.VM):
				return fmt.Errorf("%s.http.vm: %q is none of the group's VMs", at, p.VM)
			case p.Port < 1 || p.Port > 65535:
				return fmt.Errorf("%s.http.port: %d is outside 1..65535", at, p.Port)
			case !probePath.MatchString(p.Path):
				return fmt.Errorf("%s.http.path: %q: a path from '/' of letters, digits and ._~/%%=&?+,:@-", at, p.Path)
			case p.ExpectStatus < 100 || p.ExpectStatus > 599:
				return fmt.Errorf("%s.http.expectStatus: %d is not an HTTP status", at, p.ExpectStatus)
			case c.ExpectOutput != "":
				return fmt.Errorf("%s.expectOutput: an http probe checks its status, not its output", at)
			}
		}
	}
	return nil
}

// DrillSchedule is the drill's parsed schedule (nil when it has none).
func (d *DrillSpec) DrillSchedule() *ncrontab.Schedule {
	if d.Schedule == "" {
		return nil
	}
	s, err := ncrontab.Parse(d.Schedule)
	if err != nil {
		return nil // validated on enable: a stored schedule parses
	}
	return s
}

// Readiness is a group's failover readiness: whether a drill succeeded within the drill's window, and
// when its schedule drills next.
type Readiness struct {
	Window    time.Duration
	Ready     bool
	Age       time.Duration // since the last successful drill (0: none)
	NextDrill time.Time     // zero: no schedule
	// Since is what the window counts from (the last successful drill, else when the group or plan
	// began); Overdue: with a schedule, the window has passed since then (the drill-overdue alert).
	Since   time.Time
	Overdue bool
}

// Readiness rates the group's failover readiness at now.
func (g *Group) Readiness(now time.Time) Readiness {
	return ReadinessOf(g.Spec.Drill, g.Record.LastDrillSucceededAt, g.Record.CreatedAt, now)
}

// ReadinessOf rates readiness (a group's, a plan's) from its drill, its last successful drill and when
// it began (what the window counts from until a drill succeeds).
func ReadinessOf(d DrillSpec, lastSucceeded, begun, now time.Time) Readiness {
	days := d.ReadinessDays
	if days == 0 {
		days = DefaultReadinessDays
	}
	r := Readiness{Window: time.Duration(days) * 24 * time.Hour, Since: begun}
	if last := lastSucceeded; !last.IsZero() {
		r.Age, r.Since = now.Sub(last), last
		r.Ready = r.Age <= r.Window
	}
	if s := d.DrillSchedule(); s != nil {
		r.NextDrill = s.Next(now.UTC())
		r.Overdue = now.Sub(r.Since) > r.Window
	}
	return r
}

// drillOverdue is the readiness alert's condition: a group with a drill schedule, replicating, without a
// successful drill within the window since it was enabled.
func drillOverdue(r *GroupRecord, now time.Time) (bool, string) {
	rd := ReadinessOf(r.Drill, r.LastDrillSucceededAt, r.CreatedAt, now)
	if !rd.Overdue || r.State != StateProtected {
		return false, ""
	}
	days := int(rd.Window.Hours() / 24)
	last := r.LastDrillResult
	if last == "" {
		last = "none"
	}
	if r.LastDrillSucceededAt.IsZero() {
		return true, fmt.Sprintf("no drill has succeeded in the %d days since the group was enabled (last drill: %s)", days, last)
	}
	return true, fmt.Sprintf("no drill has succeeded for %d days, more than the %d the drill allows (last drill: %s)", int(now.Sub(rd.Since).Hours()/24), days, last)
}
