package tables

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// encodeEntity turns a typed struct into a Table storage JSON entity: nested values (slices, maps,
// structs other than time.Time) become JSON text in one string property, and integers beyond Int32
// carry the Edm.Int64 annotation the service needs to keep them exact.
func encodeEntity(entity any) ([]byte, string, string, error) {
	raw, err := json.Marshal(entity)
	if err != nil {
		return nil, "", "", fmt.Errorf("encoding entity: %w", err)
	}
	var props map[string]json.RawMessage
	if err := json.Unmarshal(raw, &props); err != nil {
		return nil, "", "", fmt.Errorf("entity must encode as a JSON object: %w", err)
	}
	out := make(map[string]any, len(props))
	for name, v := range props {
		v = bytes.TrimSpace(v)
		switch {
		case len(v) == 0 || string(v) == "null":
			continue // absent and null read back the same
		case v[0] == '{' || v[0] == '[':
			out[name] = string(v)
		case v[0] == '"' || v[0] == 't' || v[0] == 'f':
			out[name] = v
		default: // a number
			if i, err := strconv.ParseInt(string(v), 10, 64); err == nil && (i > math.MaxInt32 || i < math.MinInt32) {
				out[name] = strconv.FormatInt(i, 10)
				out[name+"@odata.type"] = "Edm.Int64"
			} else {
				out[name] = v
			}
		}
	}
	pk, _ := out["PartitionKey"].(json.RawMessage)
	rk, _ := out["RowKey"].(json.RawMessage)
	var pks, rks string
	if json.Unmarshal(pk, &pks) != nil || json.Unmarshal(rk, &rks) != nil || pks == "" {
		return nil, "", "", fmt.Errorf("entity %T has no PartitionKey/RowKey (embed replication.Keys)", entity)
	}
	if err := checkKey(pks); err != nil {
		return nil, "", "", fmt.Errorf("PartitionKey %q: %w", pks, err)
	}
	if err := checkKey(rks); err != nil {
		return nil, "", "", fmt.Errorf("RowKey %q: %w", rks, err)
	}
	data, err := json.Marshal(out)
	return data, pks, rks, err
}

// checkKey enforces the characters Table storage forbids in keys.
func checkKey(k string) error {
	if len(k) > 1024 {
		return fmt.Errorf("longer than 1 KiB")
	}
	if i := strings.IndexAny(k, "/\\#?\t\n\r"); i >= 0 {
		return fmt.Errorf("contains %q, which Table storage forbids in keys", k[i])
	}
	return nil
}

var timeType = reflect.TypeOf(time.Time{})

// nestedFields lists the JSON names of a struct's fields that hold nested values (stored as JSON text).
func nestedFields(t reflect.Type, into map[string]bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if f.Anonymous && name == "" {
			nestedFields(f.Type, into)
			continue
		}
		if name == "" {
			name = f.Name
		}
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch ft.Kind() {
		case reflect.Struct:
			if ft != timeType {
				into[name] = true
			}
		case reflect.Slice, reflect.Map, reflect.Array:
			if ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Uint8 {
				continue // []byte is base64 text already
			}
			into[name] = true
		}
	}
}

// decodeEntity fills a typed struct from a Table storage JSON entity, undoing encodeEntity.
func decodeEntity(data []byte, into any) error {
	var props map[string]json.RawMessage
	if err := json.Unmarshal(data, &props); err != nil {
		return fmt.Errorf("decoding entity: %w", err)
	}
	nested := map[string]bool{}
	nestedFields(reflect.TypeOf(into), nested)
	clean := make(map[string]json.RawMessage, len(props))
	for name, v := range props {
		if strings.HasPrefix(name, "odata.") || strings.Contains(name, "@odata.") {
			continue
		}
		var typ string
		if t, ok := props[name+"@odata.type"]; ok {
			json.Unmarshal(t, &typ)
		}
		switch {
		case typ == "Edm.Int64":
			var s string
			if json.Unmarshal(v, &s) == nil {
				v = json.RawMessage(s)
			}
		case nested[name]:
			var s string
			if json.Unmarshal(v, &s) == nil {
				v = json.RawMessage(s)
			}
		}
		clean[name] = v
	}
	raw, err := json.Marshal(clean)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, into); err != nil {
		return fmt.Errorf("decoding entity into %T: %w", into, err)
	}
	return nil
}

func etagOf(data []byte) string {
	var meta struct {
		ETag string `json:"odata.etag"`
	}
	json.Unmarshal(data, &meta)
	return meta.ETag
}
