package replication

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestDecodeDescriptorErrorsNameTheField(t *testing.T) {
	cases := []struct{ body, want string }{
		{`{`, "descriptor is not valid JSON"},
		{`{"group":"g1","seq":1,"kind":"batch","sourceTime":"2026-01-01T00:00:00Z","journal":"j","crc64":"0011223344556677","extra":1}`, `unknown field "extra"`},
		{`{"group":"G!","seq":1,"kind":"marker","consistency":"crash","sourceTime":"2026-01-01T00:00:00Z"}`, "descriptor field group"},
		{`{"group":"g1","seq":0,"kind":"marker","consistency":"crash","sourceTime":"2026-01-01T00:00:00Z"}`, "descriptor field seq: 0"},
		{`{"group":"g1","seq":1,"kind":"marker","consistency":"crash"}`, "descriptor field sourceTime: missing"},
		{`{"group":"g1","seq":1,"kind":"blob","sourceTime":"2026-01-01T00:00:00Z"}`, `descriptor field kind: "blob", want batch, marker, resync or scrub`},
		{`{"group":"g1","seq":1,"kind":"batch","sourceTime":"2026-01-01T00:00:00Z","crc64":"0011223344556677"}`, "descriptor field journal"},
		{`{"group":"g1","seq":1,"kind":"batch","sourceTime":"2026-01-01T00:00:00Z","journal":"g1/00000000000000000001.batch","crc64":"12"}`, "descriptor field crc64"},
		// A forger's long field: the event is refused on its size, unparsed.
		{`{"group":"g1","seq":1,"kind":"marker","consistency":"crash","sourceTime":"2026-01-01T00:00:00Z","journal":"` + strings.Repeat("x", 200<<10) + `"}`, "more than the 2048"},
		{`{"group":"g1","seq":1,"kind":"batch","sourceTime":"2026-01-01T00:00:00Z","journal":"g2/00000000000000000001.batch","crc64":"0011223344556677"}`, `want "g1/00000000000000000001.batch"`},
		{`{"group":"g1","seq":1,"kind":"marker","consistency":"crash","sourceTime":"2026-01-01T00:00:00Z","journal":"g1/x"}`, `want "g1/00000000000000000001.batch"`},
		{`{"group":"g1","seq":1,"kind":"marker","consistency":"fuzzy","sourceTime":"2026-01-01T00:00:00Z"}`, "descriptor field consistency"},
		{`{"group":"g1","seq":1,"kind":"marker","consistency":"app","sourceTime":"2026-01-01T00:00:00Z"} {}`, "trailing data"},
	}
	for _, c := range cases {
		_, err := DecodeDescriptor([]byte(c.body))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("DecodeDescriptor(%s) = %v, want an error containing %q", c.body, err, c.want)
		}
	}
	d, err := DecodeDescriptor([]byte(`{"group":"g1","seq":7,"kind":"batch","sourceTime":"2026-01-01T00:00:00Z","journal":"g1/00000000000000000007.batch","bytes":4096,"crc64":"0011223344556677"}`))
	if err != nil || d.Seq != 7 || d.Bytes != 4096 || d.Journal != BatchBlobName("g1", 7) {
		t.Fatalf("valid descriptor: %+v, %v", d, err)
	}
}

func FuzzDecodeDescriptor(f *testing.F) {
	f.Add([]byte(`{"group":"g1","seq":7,"kind":"batch","sourceTime":"2026-01-01T00:00:00Z","journal":"g1/00000000000000000007.batch","bytes":4096,"crc64":"0011223344556677"}`))
	f.Add([]byte(`{"group":"g1","seq":1,"kind":"marker","consistency":"app","sourceTime":"2026-01-01T00:00:00Z"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := DecodeDescriptor(data)
		if err == nil && d.Validate() != nil {
			t.Fatalf("DecodeDescriptor accepted an invalid descriptor %+v", d)
		}
	})
}

// An object with a key twice, or two keys differing only in case, is refused at every depth; the same
// key in sibling objects is fine.
func TestDecodeJSONRefusesDuplicateKeys(t *testing.T) {
	var v map[string]any
	for _, bad := range []string{`{"a":1,"a":2}`, `{"group":"g1","Group":"g2"}`, `{"x":{"seq":1,"SEQ":2}}`, `{"x":[{"k":1},{"k":1,"k":2}]}`,
		`{"x":[1,{"y":{}}],"y":2,"Y":3}`} {
		if err := DecodeJSON([]byte(bad), &v, "body", "a map"); err == nil || !strings.Contains(err.Error(), "twice") && !strings.Contains(err.Error(), "only in case") {
			t.Errorf("%s: %v", bad, err)
		}
	}
	for _, good := range []string{`{"a":1,"b":{"a":2},"c":[{"a":1},{"a":2}]}`, `{"a":[[],{}],"b":"a"}`, `{}`} {
		if err := DecodeJSON([]byte(good), &v, "body", "a map"); err != nil {
			t.Errorf("%s: %v", good, err)
		}
	}
}

// What refusing repeated keys costs apply per event. Figure: decoding a signed descriptor (the key
// check, the strict decode, the field checks) ÷ the raw path, encoding/json's Unmarshal of the same
// bytes into the same struct, in one run (`go test -run '^$' -bench Figure_descriptor_decode -count 3
// ./shared/replication/`).
func BenchmarkFigure_descriptor_decode(b *testing.B) {
	key := bytes.Repeat([]byte{3}, 32)
	batch := &Batch{Group: "group-with-a-longish-name", Seq: 123456, Kind: KindBatch, SourceTime: time.Now(),
		Extents: []Extent{{Disk: "vm/d", Offset: 0, Length: 4096, Data: bytes.Repeat([]byte{1}, 4096)}}}
	_, d, err := SignBatch(key, batch, false)
	if err != nil {
		b.Fatal(err)
	}
	body, _ := json.Marshal(d)
	const n = 20000
	timed := func(f func()) float64 {
		start := time.Now()
		for range n {
			f()
		}
		return float64(time.Since(start)) / n
	}
	for b.Loop() {
		ours := timed(func() {
			if _, err := DecodeDescriptor(body); err != nil {
				b.Fatal(err)
			}
		})
		raw := timed(func() {
			var v Descriptor
			json.Unmarshal(body, &v)
		})
		b.ReportMetric(ours/raw, "descriptor_decode_ratio")
		b.ReportMetric(ours/1e3, "decode_us")
		b.ReportMetric(raw/1e3, "raw_unmarshal_us")
	}
}

// A key spelled with escapes is the key the decoder reads.
func TestDecodeJSONRefusesEscapedDuplicateKeys(t *testing.T) {
	var v map[string]any
	for _, bad := range []string{`{"a":1,"\u0061":2}`, `{"group":"g1","Gr\u006fup":"g2"}`, `{"x":"a\"b","x":1}`} {
		if err := DecodeJSON([]byte(bad), &v, "body", "a map"); err == nil || !strings.Contains(err.Error(), "twice") && !strings.Contains(err.Error(), "only in case") {
			t.Errorf("%s: %v", bad, err)
		}
	}
	for _, good := range []string{`{"a\"b":1,"a":{"a\"b":2}}`, `{"k":"{\"k\":1}","l":[{"k":1}]}`} {
		if err := DecodeJSON([]byte(good), &v, "body", "a map"); err != nil {
			t.Errorf("%s: %v", good, err)
		}
	}
}
