package nbd

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
)

// twoExports serves vm1/disk0 (1 MiB, writable, described) and vm1/disk1 (64 KiB, read-only).
func twoExports(t *testing.T, s *Server) (*testServer, *memExport, *memExport) {
	t.Helper()
	ts := serve(t, s)
	d0, d1 := newMem(1<<20), newMem(64<<10)
	if err := ts.Add("vm1/disk0", d0, ExportOptions{Description: "the OS disk of vm1"}); err != nil {
		t.Fatal(err)
	}
	if err := ts.Add("vm1/disk1", d1, ExportOptions{ReadOnly: true}); err != nil {
		t.Fatal(err)
	}
	return ts, d0, d1
}

func TestGreetingAdvertisesFixedNewstyleAndNoZeroes(t *testing.T) {
	ts, _, _ := twoExports(t, &Server{})
	c := dial(t, ts.path)
	if got := c.greet(clientFixedNewstyle); got != flagFixedNewstyle|flagNoZeroes {
		t.Errorf("handshake flags %#x, want FIXED_NEWSTYLE|NO_ZEROES", got)
	}
}

func TestUnknownClientFlagsClose(t *testing.T) {
	ts, _, _ := twoExports(t, &Server{})
	for _, flags := range []uint32{1 << 2, 1 << 31, clientFixedNewstyle | 1<<5} {
		c := dial(t, ts.path)
		c.greet(flags)
		c.closed()
	}
}

func TestBadOptionMagicCloses(t *testing.T) {
	ts, _, _ := twoExports(t, &Server{})
	c := dial(t, ts.path)
	c.greet(clientFixedNewstyle)
	c.write([]byte("IHAVEOPX"), be.AppendUint32(nil, optList), be.AppendUint32(nil, 0))
	c.closed()
}

func TestOversizeOptions(t *testing.T) {
	ts, _, _ := twoExports(t, &Server{})
	c := dial(t, ts.path)
	c.greet(clientFixedNewstyle)
	big := bytes.Repeat([]byte{1}, 1<<20) // skipped, not kept, and answered
	for opt, typ := range map[uint32]uint32{99: repErrUnsup, optStructuredReply: repErrUnsup, optGo: repErrTooBig, optList: repErrTooBig} {
		c.option(opt, big)
		if r := c.optReply(); r.opt != opt || r.typ != typ {
			t.Errorf("option %d with 1 MiB of data: reply %#x, want %#x", opt, r.typ, typ)
		}
	}
	if _, typ := c.infoGo(optInfo, "vm1/disk0"); typ != repAck {
		t.Errorf("NBD_OPT_INFO after oversize options: %#x", typ)
	}
	c.option(optExportName, big) // no error reply possible: a hard disconnect
	c.closed()
}

func TestUnsupportedOptionsGetErrUnsupAndParsingGoesOn(t *testing.T) {
	ts, _, _ := twoExports(t, &Server{})
	c := dial(t, ts.path)
	c.greet(clientFixedNewstyle | clientNoZeroes)
	for _, o := range []struct {
		opt  uint32
		data []byte
	}{
		{optStructuredReply, nil}, {optExtendedHeaders, nil}, {optStartTLS, nil},
		{optListMetaContext, infoRequest("vm1/disk0")}, {optSetMetaContext, []byte("base:allocation")},
		{4, nil}, {12345, bytes.Repeat([]byte{0xff}, 3000)},
	} {
		c.option(o.opt, o.data)
		if r := c.optReply(); r.opt != o.opt || r.typ != repErrUnsup {
			t.Errorf("option %d: reply to %d type %#x, want NBD_REP_ERR_UNSUP", o.opt, r.opt, r.typ)
		}
	}
	if _, typ := c.infoGo(optGo, "vm1/disk0"); typ != repAck {
		t.Fatalf("NBD_OPT_GO after unsupported options: %#x", typ)
	}
	if r := c.do(cmdRead, 0, 0, 512, nil); r.errno != 0 || len(r.data) != 512 {
		t.Errorf("read after NBD_OPT_GO: errno %d, %d bytes", r.errno, len(r.data))
	}
}

func TestUnknownExport(t *testing.T) {
	ts, _, _ := twoExports(t, &Server{})
	c := dial(t, ts.path)
	c.greet(clientFixedNewstyle)
	for _, opt := range []uint32{optInfo, optGo} {
		infos, typ := c.infoGo(opt, "vm1/nope")
		if typ != repErrUnknown || len(infos) != 0 {
			t.Errorf("%s of an unknown export: %d infos, reply %#x; want none and NBD_REP_ERR_UNKNOWN", infoOrGo(opt), len(infos), typ)
		}
	}
	// NBD_OPT_EXPORT_NAME cannot carry an error: the server ends the session.
	c.option(optExportName, []byte("vm1/nope"))
	c.closed()
}

func TestDefaultExport(t *testing.T) {
	for _, def := range []string{"", "vm1/disk0", "vm1/gone"} {
		t.Run(fmt.Sprintf("default=%q", def), func(t *testing.T) {
			ts, _, _ := twoExports(t, &Server{DefaultExport: def})
			c := dial(t, ts.path)
			c.greet(clientFixedNewstyle)
			infos, typ := c.infoGo(optInfo, "", infoName)
			switch {
			case def == "vm1/disk0" && (typ != repAck || string(infos[infoName]) != def):
				t.Errorf("the empty name: reply %#x, NBD_INFO_NAME %q; want NBD_REP_ACK, %q", typ, infos[infoName], def)
			case def != "vm1/disk0" && typ != repErrUnknown:
				t.Errorf("the empty name without a default export: reply %#x, want NBD_REP_ERR_UNKNOWN", typ)
			}
		})
	}
}

func TestExportName(t *testing.T) {
	ts, _, _ := twoExports(t, &Server{})
	for _, noZeroes := range []bool{false, true} {
		c := dial(t, ts.path)
		flags := clientFixedNewstyle
		if noZeroes {
			flags |= clientNoZeroes
		}
		c.greet(flags)
		c.option(optExportName, []byte("vm1/disk1"))
		p := c.read(10)
		if size, tf := be.Uint64(p), be.Uint16(p[8:]); size != 64<<10 || tf != flagsReadOnlyExports {
			t.Errorf("NBD_OPT_EXPORT_NAME: size %d flags %#x, want %d %#x", size, tf, 64<<10, flagsReadOnlyExports)
		}
		if !noZeroes && !bytes.Equal(c.read(124), make([]byte, 124)) {
			t.Error("the 124 reserved bytes are not zero")
		}
		if r := c.do(cmdRead, 0, 512, 512, nil); r.errno != 0 || len(r.data) != 512 {
			t.Errorf("read after NBD_OPT_EXPORT_NAME (no zeroes %v): errno %d, %d bytes", noZeroes, r.errno, len(r.data))
		}
	}
}

func TestList(t *testing.T) {
	ts, _, _ := twoExports(t, &Server{})
	c := dial(t, ts.path)
	c.greet(clientFixedNewstyle)
	c.option(optList, nil)
	var got []string
	for r := c.optReply(); r.typ != repAck; r = c.optReply() {
		if r.typ != repServer || r.opt != optList {
			t.Fatalf("NBD_OPT_LIST reply type %#x for option %d", r.typ, r.opt)
		}
		n := be.Uint32(r.data)
		got = append(got, fmt.Sprintf("%s|%s", r.data[4:4+n], r.data[4+n:]))
	}
	if want := []string{"vm1/disk0|the OS disk of vm1", "vm1/disk1|"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("NBD_OPT_LIST: %q, want %q", got, want)
	}
	c.option(optList, []byte{0})
	if r := c.optReply(); r.typ != repErrInvalid {
		t.Errorf("NBD_OPT_LIST with data: %#x, want NBD_REP_ERR_INVALID", r.typ)
	}
}

func TestInfoReplies(t *testing.T) {
	ts, _, _ := twoExports(t, &Server{})
	c := dial(t, ts.path)
	c.greet(clientFixedNewstyle)
	infos, typ := c.infoGo(optInfo, "vm1/disk0", infoName, infoDescription, 999, infoBlockSize, infoName)
	if typ != repAck {
		t.Fatalf("NBD_OPT_INFO: %#x", typ)
	}
	want := map[uint16][]byte{
		infoExport:      be.AppendUint16(be.AppendUint64(nil, 1<<20), flagsWritableExports),
		infoName:        []byte("vm1/disk0"),
		infoDescription: []byte("the OS disk of vm1"),
		infoBlockSize:   be.AppendUint32(be.AppendUint32(be.AppendUint32(nil, 512), 4096), 32<<20),
	}
	if fmt.Sprint(infos) != fmt.Sprint(want) {
		t.Errorf("NBD_OPT_INFO replies %v, want %v", infos, want)
	}
	if be.Uint16(infos[infoExport][8:]) != flagHasFlags|flagSendFlush|flagSendFUA|flagSendTrim|flagSendWriteZeroes|flagCanMultiConn {
		t.Errorf("transmission flags %#x", infos[infoExport][8:])
	}
	// Without requests: only what is always sent.
	infos, _ = c.infoGo(optInfo, "vm1/disk1")
	if len(infos) != 2 || be.Uint16(infos[infoExport][8:]) != flagHasFlags|flagReadOnly|flagSendFlush|flagCanMultiConn {
		t.Errorf("NBD_OPT_INFO of the read-only export: %v", infos)
	}
	// NBD_OPT_INFO does not enter transmission: options still work, and an abort ends the session.
	c.option(optAbort, []byte("ignored"))
	if r := c.optReply(); r.typ != repAck {
		t.Errorf("NBD_OPT_ABORT: %#x, want NBD_REP_ACK", r.typ)
	}
	c.closed()
}

func TestMalformedInfoIsInvalid(t *testing.T) {
	ts, _, _ := twoExports(t, &Server{})
	c := dial(t, ts.path)
	c.greet(clientFixedNewstyle)
	long := strings.Repeat("x", maxStringLength+1)
	for name, data := range map[string][]byte{
		"short":              {0, 0, 0, 0, 0},
		"name past the end":  append(infoRequest("vm1/disk0"), 0, 0)[1:],
		"huge name length":   {0xff, 0xff, 0xff, 0xff, 0, 0},
		"count too big":      infoRequest("vm1/disk0", infoName)[:len(infoRequest("vm1/disk0"))],
		"trailing byte":      append(infoRequest("vm1/disk0", infoName), 0),
		"NUL in name":        infoRequest("vm1/\x00disk0"),
		"name over 4096":     infoRequest(long),
		"name is not UTF-8":  infoRequest("vm1/\xff"),
		"odd requests bytes": append(infoRequest("vm1/disk0"), 0),
	} {
		for _, opt := range []uint32{optInfo, optGo} {
			c.option(opt, data)
			if r := c.optReply(); r.typ != repErrInvalid || len(r.data) == 0 {
				t.Errorf("%s %s: reply %#x %q, want NBD_REP_ERR_INVALID with a message", infoOrGo(opt), name, r.typ, r.data)
			}
		}
	}
	if _, typ := c.infoGo(optGo, "vm1/disk0"); typ != repAck {
		t.Errorf("NBD_OPT_GO after invalid ones: %#x", typ)
	}
}

func TestHandshakeTimeout(t *testing.T) {
	ts, _, _ := twoExports(t, &Server{HandshakeTimeout: 100 * time.Millisecond})
	c := dial(t, ts.path)
	c.greet(clientFixedNewstyle)
	start := time.Now()
	c.closed()
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("a silent client held the connection %v", d)
	}
	// The timeout ends with the handshake: a session may be idle.
	c, _, _ = connect(t, ts.path, "vm1/disk0")
	time.Sleep(300 * time.Millisecond)
	if r := c.do(cmdFlush, 0, 0, 0, nil); r.errno != 0 {
		t.Errorf("flush after idling: errno %d", r.errno)
	}
}

func TestAddRefusesBadNames(t *testing.T) {
	var s Server
	for _, name := range []string{"", "a\x00b", strings.Repeat("d", 4097), "\xff"} {
		if err := s.Add(name, newMem(512), ExportOptions{}); err == nil {
			t.Errorf("Add(%q) succeeded", name)
		}
	}
	if err := s.Add("vm1/odd", newMem(1000), ExportOptions{}); err == nil {
		t.Error("Add took an export whose size is not a multiple of MinBlockSize")
	}
	if err := s.Add("vm1/disk0", newMem(512), ExportOptions{}); err != nil {
		t.Error(err)
	}
	s.Remove("vm1/disk0")
	if _, _, ok := s.lookup("vm1/disk0"); ok {
		t.Error("a removed export is still found")
	}
}
