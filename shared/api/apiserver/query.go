package apiserver

import (
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/standby-dr/standby/shared/replication"
)

// The query parameters of the API's listings, decoded with errors that name the parameter.

// IntQuery is a whole-number query parameter, def when absent.
func IntQuery(q url.Values, name string, def int64) (int64, error) {
	v := q.Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %s=%q is not a whole number", replication.ErrInvalid, name, v)
	}
	return n, nil
}

// BoolQuery reads a true/false query parameter (absent: def).
func BoolQuery(q url.Values, name string, def bool) (bool, error) {
	switch v := q.Get(name); v {
	case "":
		return def, nil
	case "true", "false":
		return v == "true", nil
	default:
		return def, fmt.Errorf("%w: %s=%q, want true or false", replication.ErrInvalid, name, v)
	}
}

// TimeRange reads ?from=&to= (RFC 3339; absent: unbounded).
func TimeRange(q url.Values) (from, to time.Time, err error) {
	for name, into := range map[string]*time.Time{"from": &from, "to": &to} {
		if s := q.Get(name); s != "" {
			if *into, err = time.Parse(time.RFC3339Nano, s); err != nil {
				return from, to, fmt.Errorf("%w: %s=%q is not an RFC 3339 time", replication.ErrInvalid, name, s)
			}
		}
	}
	return from, to, nil
}

// PointQueryOf reads ?kind=&from=&to=&limit=&after= (after: a continuation this API gave).
func PointQueryOf(v url.Values) (replication.PointQuery, error) {
	q := replication.PointQuery{Kind: v.Get("kind"), Limit: 100, After: -1}
	var err error
	if q.From, q.To, err = TimeRange(v); err != nil {
		return q, err
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 1 || n > 1000 {
			return q, fmt.Errorf("%w: limit=%q, want 1 to 1000", replication.ErrInvalid, s)
		}
		q.Limit = n
	}
	if s := v.Get("after"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return q, fmt.Errorf("%w: after=%q is not a continuation this API gave", replication.ErrInvalid, s)
		}
		q.After = n
	}
	return q, nil
}
