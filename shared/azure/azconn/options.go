package azconn

import (
	"fmt"
	"sort"
	"strings"
)

// Options reads a setting's "Key=value;Key=value", refusing a part without '=' or a key given twice.
func Options(setting, value string) (map[string]string, error) {
	opts := map[string]string{}
	for _, part := range strings.Split(value, ";") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" {
			return nil, fmt.Errorf("%s: %q is not Key=value", setting, part)
		}
		if _, dup := opts[k]; dup {
			return nil, fmt.Errorf("%s: %s= is given twice", setting, k)
		}
		opts[k] = v
	}
	return opts, nil
}

// UnknownKeys names the keys outside allowed ("" when there are none), sorted.
func UnknownKeys(opts map[string]string, allowed ...string) string {
	var extra []string
	for k := range opts {
		known := false
		for _, a := range allowed {
			known = known || k == a
		}
		if !known {
			extra = append(extra, k+"=")
		}
	}
	sort.Strings(extra)
	if len(extra) == 0 {
		return ""
	}
	return "unknown " + strings.Join(extra, ", ")
}
