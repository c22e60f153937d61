package funcproto

import (
	"fmt"
	"time"
)

// How the Functions host writes times. The sources (full citations in testdata/README.md):
//   - A DateTime binding-data value goes through the custom-handler converter, which re-parses it with
//     DateTime.Parse(value.ToString()) (Azure/azure-functions-host@89dc438d, src/WebJobs.Script/Workers/
//     MessageExtensions/ScriptInvocationContextExtensions.cs:66-69): the general "G" format drops the
//     fraction and the zone, so it arrives as "2026-11-20T10:00:00" — no offset, whole seconds. Service
//     Bus's EnqueuedTimeUtc and ExpiresAtUtc are such values (EnqueuedTime.DateTime: kind Unspecified).
//   - A DateTimeOffset goes the same way (l.70-73) and keeps its offset: "2026-11-20T10:00:00+00:00".
//   - A DateTime inside an array or an object is written by Newtonsoft as it is: full precision (up to
//     seven fraction digits, trailing zeros trimmed), and the zone by its kind — none for Unspecified
//     (Event Hubs' EnqueuedTimeUtcArray), "+00:00" for Local on a UTC instance (the timer's
//     ScheduleStatus), "Z" for Utc (sys.UtcNow) (JamesNK/Newtonsoft.Json@09bb545d, Src/Newtonsoft.Json/
//     Utilities/DateTimeUtils.cs:670-716).
const (
	layoutDateTime       = "2006-01-02T15:04:05"               // converter DateTime: no zone, whole seconds
	layoutDateTimeOffset = "2006-01-02T15:04:05-07:00"         // converter DateTimeOffset
	layoutUnspecified    = "2006-01-02T15:04:05.9999999"       // Newtonsoft, kind Unspecified
	layoutLocal          = "2006-01-02T15:04:05.9999999-07:00" // Newtonsoft, kind Local
	layoutUTC            = "2006-01-02T15:04:05.9999999Z07:00" // Newtonsoft, kind Utc
)

// hostTime writes t (in UTC, as the host's instances run) in one of the host's layouts.
func hostTime(t time.Time, layout string) string { return t.UTC().Format(layout) }

// parseHostTime reads every form the host writes. A time without a zone is a UTC wall-clock time: the
// values the host sends without one (EnqueuedTimeUtc, EnqueuedTimeUtcArray) are UTC by name.
func parseHostTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	t, err := time.ParseInLocation("2006-01-02T15:04:05.999999999", s, time.UTC)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not a time the Functions host writes (2006-01-02T15:04:05[.fffffff][Z|±hh:mm])", s)
	}
	return t, nil
}
