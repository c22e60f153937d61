// Package ncrontab parses NCRONTAB expressions, the cron format of Azure Functions' timer trigger (the
// NCrontab library's: five fields {minute} {hour} {day} {month} {day-of-week}, or six with {second}
// first, which the timer trigger requires). Day and day-of-week must both match, as in NCrontab.
package ncrontab

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Schedule is a parsed expression.
type Schedule struct {
	fields [6]map[int]bool
	text   string
}

var cronRanges = [6][2]int{{0, 59}, {0, 59}, {0, 23}, {1, 31}, {1, 12}, {0, 6}}
var cronNames = [6]map[string]int{
	4: {"JAN": 1, "FEB": 2, "MAR": 3, "APR": 4, "MAY": 5, "JUN": 6, "JUL": 7, "AUG": 8, "SEP": 9, "OCT": 10, "NOV": 11, "DEC": 12},
	5: {"SUN": 0, "MON": 1, "TUE": 2, "WED": 3, "THU": 4, "FRI": 5, "SAT": 6},
}
var cronFieldNames = [6]string{"second", "minute", "hour", "day", "month", "day-of-week"}

// MaxLength bounds an expression's text.
const MaxLength = 200

// ParseWithSeconds parses a six-field expression: {second} {minute} {hour} {day} {month} {day-of-week}.
func ParseWithSeconds(text string) (*Schedule, error) {
	parts := strings.Fields(text)
	if len(parts) != 6 {
		return nil, fmt.Errorf("%q has %d fields; NCRONTAB needs six: {second} {minute} {hour} {day} {month} {day-of-week}", text, len(parts))
	}
	return parse(text, parts)
}

// Parse parses a five-field expression: {minute} {hour} {day} {month} {day-of-week}, due at second 0.
func Parse(text string) (*Schedule, error) {
	parts := strings.Fields(text)
	if len(parts) != 5 {
		return nil, fmt.Errorf("%q has %d fields; a schedule has five: {minute} {hour} {day} {month} {day-of-week}", text, len(parts))
	}
	return parse(text, append([]string{"0"}, parts...))
}

func parse(text string, parts []string) (*Schedule, error) {
	if len(text) > MaxLength {
		return nil, fmt.Errorf("an expression is at most %d characters", MaxLength)
	}
	s := &Schedule{text: text}
	for i, part := range parts {
		set, err := parseCronField(part, i)
		if err != nil {
			return nil, fmt.Errorf("%q: %s field %q: %v", text, cronFieldNames[i], part, err)
		}
		s.fields[i] = set
	}
	return s, nil
}

func parseCronValue(v string, field int) (int, error) {
	if n, ok := cronNames[field][strings.ToUpper(v)]; ok {
		return n, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number", v)
	}
	if field == 5 && n == 7 {
		n = 0
	}
	lo, hi := cronRanges[field][0], cronRanges[field][1]
	if n < lo || n > hi {
		return 0, fmt.Errorf("%d is outside %d-%d", n, lo, hi)
	}
	return n, nil
}

func parseCronField(text string, field int) (map[int]bool, error) {
	set := map[int]bool{}
	lo, hi := cronRanges[field][0], cronRanges[field][1]
	for _, item := range strings.Split(text, ",") {
		rng, stepText, hasStep := strings.Cut(item, "/")
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepText)
			if err != nil || n < 1 {
				return nil, fmt.Errorf("step %q is not a positive number", stepText)
			}
			step = n
		}
		from, to := lo, hi
		switch {
		case rng == "*":
		case strings.Contains(rng, "-"):
			a, b, _ := strings.Cut(rng, "-")
			var err error
			if from, err = parseCronValue(a, field); err != nil {
				return nil, err
			}
			if to, err = parseCronValue(b, field); err != nil {
				return nil, err
			}
			if from > to {
				return nil, fmt.Errorf("range %s runs backwards", rng)
			}
		default:
			n, err := parseCronValue(rng, field)
			if err != nil {
				return nil, err
			}
			from, to = n, n
			if hasStep {
				to = hi
			}
		}
		for v := from; v <= to; v += step {
			set[v] = true
		}
	}
	return set, nil
}

// Next returns the first due time strictly after t (in t's location), or five years after t when
// none comes before (a day the months never have: 31 February).
func (s *Schedule) Next(t time.Time) time.Time {
	t = t.Truncate(time.Second).Add(time.Second)
	limit := t.AddDate(5, 0, 0)
	for t.Before(limit) {
		switch {
		case !s.fields[4][int(t.Month())]:
			t = time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, t.Location())
		case !s.fields[3][t.Day()] || !s.fields[5][int(t.Weekday())]:
			t = time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, t.Location())
		case !s.fields[2][t.Hour()]:
			t = time.Date(t.Year(), t.Month(), t.Day(), t.Hour()+1, 0, 0, 0, t.Location())
		case !s.fields[1][t.Minute()]:
			t = time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute()+1, 0, 0, t.Location())
		case !s.fields[0][t.Second()]:
			t = t.Add(time.Second)
		default:
			return t
		}
	}
	return limit
}

func (s *Schedule) String() string { return s.text }
