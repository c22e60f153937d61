package nbd

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"
)

func optionBytes(opt uint32, data []byte) []byte {
	p := be.AppendUint64(nil, ihaveopt)
	p = be.AppendUint32(p, opt)
	p = be.AppendUint32(p, uint32(len(data)))
	return append(p, data...)
}

func requestBytes(typ, flags uint16, off uint64, length uint32, payload []byte) []byte {
	p := be.AppendUint32(nil, requestMagic)
	p = be.AppendUint16(p, flags)
	p = be.AppendUint16(p, typ)
	p = be.AppendUint64(p, 42)
	p = be.AppendUint64(p, off)
	p = be.AppendUint32(p, length)
	return append(p, payload...)
}

func concat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// FuzzHandshake feeds arbitrary client bytes to a connection: negotiation, then (when the bytes get
// that far) requests. The server must neither panic nor hang, whatever it is sent.
func FuzzHandshake(f *testing.F) {
	flags := be.AppendUint32(nil, clientFixedNewstyle|clientNoZeroes)
	f.Add(concat(flags, optionBytes(optGo, infoRequest("vm1/disk0", infoBlockSize, infoName)),
		requestBytes(cmdWrite, cmdFlagFUA, 512, 512, pattern(512, 1)), requestBytes(cmdRead, 0, 0, 4096, nil),
		requestBytes(cmdWriteZeroes, cmdFlagNoHole, 0, 4096, nil), requestBytes(cmdTrim, 0, 0, 512, nil),
		requestBytes(cmdFlush, 0, 0, 0, nil), requestBytes(cmdDisc, 0, 0, 0, nil)))
	f.Add(concat(flags, optionBytes(optExportName, nil), requestBytes(cmdWrite, 0, 1<<20, 512, pattern(512, 2)),
		requestBytes(cmdRead, 0, 0, MaxPayload+1, nil), requestBytes(99, 0, 0, 0, nil)))
	f.Add(concat(flags, optionBytes(optList, nil), optionBytes(optInfo, infoRequest("", infoDescription)),
		optionBytes(optStructuredReply, nil), optionBytes(optGo, infoRequest("ro")), requestBytes(cmdWrite, 0, 0, 512, pattern(512, 3))))
	f.Add(concat(flags, optionBytes(optInfo, []byte{0, 0, 0, 9, 'x'}), optionBytes(optAbort, nil)))
	f.Add(concat(flags, optionBytes(12, nil)[:12], be.AppendUint32(nil, 1<<31)))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		s := &Server{Logger: slog.New(slog.DiscardHandler), DefaultExport: "vm1/disk0", HandshakeTimeout: 2 * time.Second}
		if err := s.Add("vm1/disk0", newMem(64<<10), ExportOptions{Description: "fuzzed"}); err != nil {
			t.Fatal(err)
		}
		if err := s.Add("ro", newMem(4096), ExportOptions{ReadOnly: true}); err != nil {
			t.Fatal(err)
		}
		client, server := net.Pipe()
		done := make(chan struct{})
		go func() {
			s.ServeConn(context.Background(), server)
			close(done)
		}()
		go io.Copy(io.Discard, client) // take every reply, so the server never blocks on one
		_ = client.SetWriteDeadline(time.Now().Add(5 * time.Second))
		_, _ = client.Write(in) // fails once the server hangs up, which it may
		client.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("ServeConn did not return after the client closed (input %x)", in[:min(len(in), 64)])
		}
	})
}

// FuzzParseInfoRequest checks the NBD_OPT_INFO/NBD_OPT_GO decoder accepts exactly the data it could
// have been encoded from.
func FuzzParseInfoRequest(f *testing.F) {
	f.Add(infoRequest("vm1/disk0", infoName, infoBlockSize))
	f.Add(infoRequest(""))
	f.Add([]byte{0, 0, 0, 200, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		name, requests, err := parseInfoRequest(data)
		if err != nil {
			return
		}
		if again := infoRequest(name, requests...); !bytes.Equal(again, data) {
			t.Fatalf("parsed %q %v from %x, which encode as %x", name, requests, data, again)
		}
	})
}
