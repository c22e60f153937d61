package replication

import (
	"encoding/json"
	"strings"
	"testing"
)

// A group spec as the API decodes it: never a panic, and whatever Validate accepts normalizes stably
// and survives a JSON round trip unchanged.
func FuzzGroupSpec(f *testing.F) {
	f.Add([]byte(`{"vms":[{"name":"web","disks":[{"name":"os","sizeBytes":1048576,"source":"agent"}]}]}`))
	f.Add([]byte(`{"vms":[{"name":"db","subnet":"p/a","staticIP":"10.0.0.4","disks":[{"name":"os","sizeBytes":2097152,"source":"file:/dev/sdb","role":"os","managedDisk":"/subscriptions/x/resourceGroups/r/providers/Microsoft.Compute/disks/d"}]}],"network":{"mappings":[{"source":"p/a","target":"t/a","test":"x/a","targetPrefix":"10.0.0.0/24"}]},"target":{"disks":{"db/os":"c1/b.vhd"}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var spec GroupSpec
		if DecodeJSON(data, &spec, "body", "a group spec") != nil {
			return
		}
		spec.Normalize("g1")
		if spec.Validate() != nil {
			return
		}
		again, _ := json.Marshal(spec)
		var back GroupSpec
		if err := DecodeJSON(again, &back, "body", "a group spec"); err != nil {
			t.Fatalf("a valid spec does not decode again: %v", err)
		}
		back.Normalize("g1")
		if c := spec.Conflicts(&back); len(c) != 0 {
			t.Fatalf("a valid spec changed in a round trip: %s", strings.Join(c, "; "))
		}
	})
}

// A seed request as the API decodes it: never a panic; validate refuses what it must.
func FuzzSeedRequest(f *testing.F) {
	f.Add([]byte(`{"container":"g1-back","disks":[{"key":"vm/os","managedDisk":"/subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/disks/d","sizeBytes":1048576}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var req SeedRequest
		if DecodeJSON(data, &req, "body", "a seed request") != nil {
			return
		}
		if req.validate("g1") == nil {
			for _, d := range req.Disks {
				if d.SizeBytes%(1<<20) != 0 || !managedDiskID.MatchString(d.ManagedDisk) {
					t.Fatalf("validate accepted %+v", d)
				}
			}
		}
	})
}

// A stored payload under a key: only what SealPayload made opens.
func FuzzOpenPayload(f *testing.F) {
	key := make([]byte, streamKeyBytes)
	f.Add([]byte("payload"), int64(3))
	f.Fuzz(func(t *testing.T, data []byte, seq int64) {
		if _, err := OpenPayload(key, "g1", seq, data); err == nil {
			payload := data[:len(data)-payloadMACSize]
			if string(SealPayload(key, "g1", seq, payload)) != string(data) {
				t.Fatal("a payload opened that SealPayload did not make")
			}
		}
		sealed := SealPayload(key, "g1", seq, append([]byte(nil), data...))
		if got, err := OpenPayload(key, "g1", seq, sealed); err != nil || string(got) != string(data) {
			t.Fatalf("a sealed payload did not open: %v", err)
		}
		if _, err := OpenPayload(key, "g1", seq+1, sealed); err == nil {
			t.Fatal("a payload opened under another sequence")
		}
	})
}
