package replication

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// checkJSONKeys refuses a JSON text in which an object has the same key twice, or two keys that differ
// only in case: encoding/json matches names case-insensitively and keeps the last, so such a text means
// one thing to a checker that reads the first and another to the code that acts on it.
func checkJSONKeys(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	type level struct {
		object  bool
		keys    map[string]string // lower-cased key → the key as written
		wantKey bool
	}
	var stack []*level
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return nil // not JSON: the decoder that follows says so precisely
		}
		var top *level
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.wantKey {
			if key, ok := tok.(string); ok {
				lower := strings.ToLower(key)
				if first, seen := top.keys[lower]; seen {
					if first == key {
						return fmt.Errorf("the key %q appears twice in one object", Truncate(key, 100))
					}
					return fmt.Errorf("the keys %q and %q differ only in case", Truncate(first, 100), Truncate(key, 100))
				}
				top.keys[lower] = key
				top.wantKey = false
				continue
			}
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &level{object: true, keys: map[string]string{}, wantKey: true})
			continue
		case json.Delim('['):
			stack = append(stack, &level{})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		// A value ended: in an object, a key comes next.
		if len(stack) > 0 && stack[len(stack)-1].object {
			stack[len(stack)-1].wantKey = true
		}
	}
}
