package qemu

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The run channel on a real guest: exit codes and output come back framed, a script cannot forge its
// status by printing the framing, a script past its timeout is killed and says so, and only the end
// of a long output comes back, with its size.
func TestRunChannel(t *testing.T) {
	im := images(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "run")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	spec := im.Spec("runner", im.OS)
	spec.Snapshot = true
	spec.RunSocket = filepath.Join(dir, "run.sock")
	m := boot(t, ctx, spec)
	if _, err := m.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	run := func(script string, timeout time.Duration) RunResult {
		t.Helper()
		res, err := RunCommand(ctx, spec.RunSocket, script, timeout)
		if err != nil {
			t.Fatalf("%q: %v", script, err)
		}
		return res
	}
	if r := run("echo hello; echo to-stderr >&2; hostname; exit 3", time.Minute); r.ExitCode != 3 || r.TimedOut ||
		string(r.Output) != "hello\nto-stderr\nstandby-vm\n" || r.OutputBytes != int64(len(r.Output)) {
		t.Fatalf("a plain script: %+v %q", r, r.Output)
	}
	// The framing printed by the script is output like any other: the status is the init's.
	forged := "for n in 0 1 2; do echo \"$n END 0 exited\"; done; printf 'x END 0 exited\\n' >/dev/ttyS0; exit 7"
	if r := run(forged, time.Minute); r.ExitCode != 7 || !strings.Contains(string(r.Output), "END 0 exited") {
		t.Fatalf("a script printing the framing: %+v %q", r, r.Output)
	}
	if r := run("sleep 30", 2*time.Second); !r.TimedOut {
		t.Fatalf("a script past its timeout: %+v", r)
	}
	if r := run("i=0; while [ $i -lt 2000 ]; do echo line-$i; i=$((i+1)); done", time.Minute); r.OutputBytes <= MaxOutput ||
		len(r.Output) != MaxOutput || !strings.HasSuffix(string(r.Output), "line-1999\n") || r.ExitCode != 0 {
		t.Fatalf("a long output: %d of %d bytes, ends %q", len(r.Output), r.OutputBytes, r.Output[max(0, len(r.Output)-20):])
	}
	if r := run("cat /var/lib/standby/boots | wc -l", time.Minute); strings.TrimSpace(string(r.Output)) != "1" {
		t.Fatalf("the guest's disk: %q", r.Output)
	}
	// A caller that gives up leaves the guest's reply unread; the next request skips it.
	short, stop := context.WithTimeout(ctx, time.Second)
	_, err = RunCommand(short, spec.RunSocket, "sleep 3; echo late", time.Minute)
	stop()
	if err == nil {
		t.Fatal("a request whose context ended succeeded")
	}
	if r := run("echo next", time.Minute); string(r.Output) != "next\n" {
		t.Fatalf("after an abandoned request: %q", r.Output)
	}
}

// The reply decoder never takes another request's lines, a malformed frame or more than its bound.
func TestReadReplyRefusesMalformedFrames(t *testing.T) {
	for _, reply := range []string{
		"n BEGIN 3\naGkK\nn END x exited\n",
		"n BEGIN 3\naGkK\nn END 0 maybe\n",
		"n BEGIN 3\n!!!\nn END 0 exited\n",
		"n END 0 exited\n",
		"n BEGIN -1\n",
		"n BEGIN 9\n" + strings.Repeat("QUFB", 3000) + "\nn END 0 exited\n",
		"n BEGIN 3\naGkK\n", // cut short
	} {
		if _, err := readReply(bufio.NewReader(strings.NewReader(reply)), "n"); err == nil {
			t.Errorf("accepted %q", reply[:min(len(reply), 60)])
		}
	}
	r, err := readReply(bufio.NewReader(strings.NewReader("m BEGIN 1\nbm8K\nm END 0 exited\nn BEGIN 3\naGkK\nn END 4 exited\n")), "n")
	if err != nil || string(r.Output) != "hi\n" || r.ExitCode != 4 {
		t.Fatalf("%+v, %v", r, err)
	}
}

func FuzzReadReply(f *testing.F) {
	f.Add("n BEGIN 3\naGkK\nn END 0 exited\n")
	f.Add("n BEGIN 0\nn END 137 timedout\n")
	f.Fuzz(func(t *testing.T, reply string) {
		r, err := readReply(bufio.NewReader(strings.NewReader(reply)), "n")
		if err == nil && (len(r.Output) > MaxOutput || r.ExitCode < 0 || r.ExitCode > 255) {
			t.Fatalf("out of bounds: %+v", r)
		}
	})
}

// Two machines on one segment reach each other, and only each other: an HTTP server on one answers
// the other at its address.
func TestSegmentConnectsMachines(t *testing.T) {
	im := images(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "seg")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	segment := fmt.Sprintf("239.77.%d.%d:%d", os.Getpid()%250, time.Now().Nanosecond()%250, 20000+os.Getpid()%40000)
	var socks []string
	for i, ip := range []string{"10.3.0.4/24", "10.3.0.5/24"} {
		spec := im.Spec(fmt.Sprintf("seg%d", i), im.OS)
		spec.Snapshot, spec.Network, spec.Segment, spec.MAC = true, Segment, segment, fmt.Sprintf("52:54:00:00:00:%02x", i+1)
		spec.Append = "standby.ip=" + ip
		spec.RunSocket = filepath.Join(dir, fmt.Sprintf("run%d.sock", i))
		m := boot(t, ctx, spec)
		if _, err := m.WaitHealthy(ctx); err != nil {
			t.Fatal(err)
		}
		socks = append(socks, spec.RunSocket)
	}
	serve := "mkdir -p /www && echo served-by-db > /www/index.html && httpd -p 8080 -h /www"
	if r, err := RunCommand(ctx, socks[0], serve, time.Minute); err != nil || r.ExitCode != 0 {
		t.Fatalf("httpd: %+v %q, %v", r, r.Output, err)
	}
	r, err := RunCommand(ctx, socks[1], `printf 'GET / HTTP/1.0\r\n\r\n' | nc 10.3.0.4 8080`, time.Minute)
	if err != nil || r.ExitCode != 0 || !strings.HasSuffix(string(r.Output), "\r\n\r\nserved-by-db\n") {
		t.Fatalf("the other machine: %+v %q, %v", r, r.Output, err)
	}
	if r, _ := RunCommand(ctx, socks[1], "ip -4 -o addr show scope global", time.Minute); !strings.Contains(string(r.Output), "10.3.0.5/24") {
		t.Fatalf("the address: %q", r.Output)
	}
}
