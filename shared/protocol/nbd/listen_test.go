package nbd

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestListenUnix(t *testing.T) {
	path := filepath.Join(socketDir(t), "run", "nbd.sock") // the directory is created
	l, err := Listen("unix:"+path, ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(path); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v (%v), want 0600", info.Mode(), err)
	}
	if _, err := Listen("unix:"+path, ListenOptions{}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("a second listener on a socket in use: %v", err)
	}
	// A socket left by a process that died is replaced.
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	l, err = Listen("unix:"+path, ListenOptions{SocketMode: 0o660})
	if err != nil {
		t.Fatalf("over a stale socket: %v", err)
	}
	defer l.Close()
	if info, _ := os.Stat(path); info.Mode().Perm() != 0o660 {
		t.Errorf("socket mode %v, want 0660", info.Mode())
	}
	file := filepath.Join(socketDir(t), "disk.raw")
	os.WriteFile(file, []byte("data"), 0o600)
	if _, err := Listen("unix:"+file, ListenOptions{}); err == nil {
		t.Error("Listen replaced a regular file")
	}
	if got, want := URI(l.Addr(), "vm1/disk 0"), "nbd+unix:///vm1/disk%200?socket="+path; got != want {
		t.Errorf("URI %s, want %s", got, want)
	}
}

func TestListenTCPIsLoopbackOnly(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:0", "localhost:0", "[::1]:0"} {
		if l, err := Listen(addr, ListenOptions{}); err == nil || !strings.Contains(err.Error(), "allow TCP explicitly") {
			if l != nil {
				l.Close()
			}
			t.Errorf("Listen(%q) without AllowTCP: %v", addr, err)
		}
		l, err := Listen(addr, ListenOptions{AllowTCP: true})
		if err != nil {
			if strings.Contains(addr, "::1") {
				t.Logf("%s: %v (no IPv6 loopback here)", addr, err)
				continue
			}
			t.Errorf("%s: %v", addr, err)
			continue
		}
		if !l.Addr().(*net.TCPAddr).IP.IsLoopback() {
			t.Errorf("%s listens on %s", addr, l.Addr())
		}
		if u := URI(l.Addr(), "vm1/disk0"); !strings.HasPrefix(u, "nbd://") || !strings.HasSuffix(u, "/vm1/disk0") {
			t.Errorf("URI %s", u)
		}
		l.Close()
	}
	for addr, why := range map[string]string{
		":0": "every interface", "0.0.0.0:0": "not a loopback address", "[::]:0": "not a loopback address",
		"10.1.2.3:0": "not a loopback address", "192.168.0.1:10809": "not a loopback address",
		"nbd.example:0": "nbd.example", "127.0.0.1": "not unix:<path> nor <host>:<port>",
		"unix:": "no path", "/run/nbd.sock": "not unix:<path> nor <host>:<port>",
	} {
		l, err := Listen(addr, ListenOptions{AllowTCP: true})
		if err == nil {
			l.Close()
			t.Errorf("Listen(%q) succeeded", addr)
		} else if !strings.Contains(err.Error(), why) {
			t.Errorf("Listen(%q): %v, want it to say %q", addr, err, why)
		}
	}
	l, err := Listen("0.0.0.0:0", ListenOptions{AllowRemote: true})
	if err != nil {
		t.Fatalf("every interface, allowed: %v", err)
	}
	l.Close()
}
