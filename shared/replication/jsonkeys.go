package replication

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// checkJSONKeys refuses a JSON text in which an object has the same key twice, or two keys that differ
// only in case: encoding/json matches names case-insensitively and keeps the last, so such a text means
// one thing to a checker that reads the first and another to the code that acts on it. It scans the
// bytes once (apply runs it on every event); what is not JSON it leaves to the decoder that follows,
// which says so precisely.
func checkJSONKeys(data []byte) error {
	type object struct {
		keys    map[string]string // lower-cased key → the key as written
		wantKey bool
	}
	var stack []*object // nil entries are arrays
	for i := 0; i < len(data); i++ {
		switch c := data[i]; c {
		case '{':
			stack = append(stack, &object{keys: map[string]string{}, wantKey: true})
		case '[':
			stack = append(stack, nil)
		case '}', ']':
			if len(stack) == 0 {
				return nil
			}
			stack = stack[:len(stack)-1]
		case ',':
			if len(stack) > 0 && stack[len(stack)-1] != nil {
				stack[len(stack)-1].wantKey = true
			}
		case '"':
			end := stringEnd(data, i)
			if end < 0 {
				return nil
			}
			if len(stack) > 0 && stack[len(stack)-1] != nil && stack[len(stack)-1].wantKey {
				top := stack[len(stack)-1]
				top.wantKey = false
				key, ok := jsonString(data[i : end+1])
				if !ok {
					return nil
				}
				lower := strings.ToLower(key)
				if first, seen := top.keys[lower]; seen {
					if first == key {
						return fmt.Errorf("the key %q appears twice in one object", Truncate(key, 100))
					}
					return fmt.Errorf("the keys %q and %q differ only in case", Truncate(first, 100), Truncate(key, 100))
				}
				top.keys[lower] = key
			}
			i = end
		}
	}
	return nil
}

// stringEnd is the index of the quote that ends the JSON string starting at data[start] (-1: none).
func stringEnd(data []byte, start int) int {
	for j := start + 1; j < len(data); j++ {
		switch data[j] {
		case '\\':
			j++
		case '"':
			return j
		}
	}
	return -1
}

// jsonString is a JSON string literal's value: as written when it has no escapes, else as encoding/json
// reads it (a key escaped as \u0061 is "a" to the decoder).
func jsonString(lit []byte) (string, bool) {
	if bytes.IndexByte(lit, '\\') < 0 {
		return string(lit[1 : len(lit)-1]), true
	}
	var s string
	return s, json.Unmarshal(lit, &s) == nil
}
