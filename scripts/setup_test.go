// Package scripts tests the set-up scripts the README's two commands run, the way a fresh machine meets
// them: an empty boot folder, no kernel modules, none of the packages, an apt-get that records what it is
// asked, an npm registry that does not answer.
package scripts

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// everyPackage is what a machine with only the base image must be asked to install, written out here
// rather than read from the script, so that a package dropped from the script's table fails this test.
var everyPackage = []string{
	"qemu-system-x86", "qemu-utils", "libnbd-bin", "e2fsprogs", "sqlite3", "libsqlite3-dev", "gcc",
	"libc6-dev", "cpio", "gzip", "kmod", "busybox-static", "linux-image-cloud-amd64", "chromium",
	"fonts-dejavu-core",
}

// hidden are the commands whose absence makes the script ask for a package: the test's PATH lacks
// them, as a base image does. dpkg-query is hidden too, so nothing counts as installed by dpkg.
var hidden = []string{
	"qemu-system-x86_64", "qemu-img", "qemu-io", "nbdinfo", "nbdcopy", "mke2fs", "e2fsck", "debugfs",
	"sqlite3", "gcc", "cpio", "gzip", "modprobe", "chromium", "dpkg-query", "apt-get", "sudo",
}

// freshPath builds a PATH of the machine's commands less the hidden ones, with a recording apt-get in
// front. The recorder appends its arguments, one call a line, to the returned file and exits with
// aptStatus for install (0 for anything else); it installs nothing.
func freshPath(t *testing.T, aptStatus int) (path, record string) {
	t.Helper()
	root := t.TempDir()
	bin := filepath.Join(root, "bin")
	record = filepath.Join(root, "apt-get.calls")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"} {
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			name := e.Name()
			if slices.Contains(hidden, name) {
				continue
			}
			if _, err := os.Lstat(filepath.Join(bin, name)); err == nil {
				continue // an earlier folder of PATH has it
			}
			os.Symlink(filepath.Join(dir, name), filepath.Join(bin, name))
		}
	}
	recorder := "#!/bin/sh\necho \"$*\" >>" + record + "\n" +
		"case \" $* \" in *\" install \"*) exit " + strconv.Itoa(aptStatus) + " ;; esac\nexit 0\n"
	if err := os.WriteFile(filepath.Join(bin, "apt-get"), []byte(recorder), 0o755); err != nil {
		t.Fatal(err)
	}
	return bin, record
}

// runVMImage runs scripts/vm-image.sh with an empty boot folder and modules root, its outputs in a
// temporary folder, and the given PATH and extra environment.
func runVMImage(t *testing.T, path string, env ...string) (string, error) {
	t.Helper()
	empty := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/bash", "vm-image.sh")
	cmd.Env = append([]string{
		"PATH=" + path,
		"HOME=" + os.Getenv("HOME"),
		"STANDBY_VM_BOOT_DIR=" + filepath.Join(empty, "boot"),
		"STANDBY_VM_MODULES_ROOT=" + empty,
		"STANDBY_VM_DIR=" + filepath.Join(t.TempDir(), "vm"),
	}, env...)
	os.MkdirAll(filepath.Join(empty, "boot"), 0o755)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("vm-image.sh did not end within 2 minutes:\n%s", out)
	}
	return string(out), err
}

func calls(t *testing.T, record string) []string {
	t.Helper()
	data, err := os.ReadFile(record)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(data)), "\n")
}

// installed returns the packages of every apt-get install call.
func installed(callLines []string) []string {
	var pkgs []string
	for _, line := range callLines {
		fields := strings.Fields(line)
		if !slices.Contains(fields, "install") {
			continue
		}
		for _, f := range fields {
			if f != "install" && !strings.HasPrefix(f, "-") {
				pkgs = append(pkgs, f)
			}
		}
	}
	return pkgs
}

// The bug a new user met: with no cloud kernel the script exited under set -e before installing
// anything, printing nothing. Now every missing package is asked for in one apt-get install, and what
// is still missing afterwards (the recorder installs nothing) is named with the step.
func TestVMImageOnAFreshMachineAsksForEveryMissingPackage(t *testing.T) {
	path, record := freshPath(t, 0)
	out, err := runVMImage(t, path)
	if err == nil {
		t.Fatalf("vm-image.sh succeeded though nothing was installed:\n%s", out)
	}
	got := installed(calls(t, record))
	for _, pkg := range everyPackage {
		if !slices.Contains(got, pkg) {
			t.Errorf("apt-get was not asked for %s; it was asked for %v\noutput:\n%s", pkg, got, out)
		}
	}
	for _, want := range []string{
		"step packages: missing:",
		"still missing after apt-get install: linux-image-cloud-amd64",
		"FAILED in step 'packages': packages still missing after apt-get install:",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// STANDBY_VM_NO_INSTALL=1 names what is missing and the command that would install it, and asks
// apt-get nothing.
func TestVMImageNoInstallPrintsWhatIsMissing(t *testing.T) {
	path, record := freshPath(t, 0)
	out, err := runVMImage(t, path, "STANDBY_VM_NO_INSTALL=1")
	if err == nil {
		t.Fatalf("vm-image.sh succeeded with nothing installed and STANDBY_VM_NO_INSTALL=1:\n%s", out)
	}
	if c := calls(t, record); len(c) > 0 {
		t.Errorf("apt-get was called with STANDBY_VM_NO_INSTALL=1: %q", c)
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	var command string
	for sc.Scan() {
		if _, after, ok := strings.Cut(sc.Text(), "apt-get install -y --no-install-recommends "); ok {
			command = after
		}
	}
	for _, pkg := range everyPackage {
		if !slices.Contains(strings.Fields(command), pkg) {
			t.Errorf("the printed apt-get command lacks %s: %q", pkg, command)
		}
		if !strings.Contains(out, "vm-image:   "+pkg+" ") {
			t.Errorf("the missing list does not name %s:\n%s", pkg, out)
		}
	}
}

// An apt-get install that fails is retried once after updating the package lists; a second failure
// ends the script with the step and apt-get's own last lines.
func TestVMImageFailedInstallIsRetriedThenNamed(t *testing.T) {
	path, record := freshPath(t, 7)
	out, err := runVMImage(t, path)
	if err == nil {
		t.Fatalf("vm-image.sh succeeded though apt-get install failed:\n%s", out)
	}
	c := calls(t, record)
	var kinds []string
	for _, line := range c {
		kinds = append(kinds, strings.Fields(line)[0])
	}
	if !slices.Equal(kinds, []string{"install", "update", "install"}) {
		t.Errorf("apt-get calls %q, want install, update, install", c)
	}
	if !strings.Contains(out, "FAILED in step 'packages': apt-get install ") {
		t.Errorf("the failure does not name the step and apt-get install:\n%s", out)
	}
}

// copyRepoFiles lays the named files of this repository out in a new folder at the same paths, so a
// script can run there without touching the checkout.
func copyRepoFiles(t *testing.T, files ...string) string {
	t.Helper()
	root := t.TempDir()
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join("..", f))
		if err != nil {
			t.Fatal(err)
		}
		info, _ := os.Stat(filepath.Join("..", f))
		os.MkdirAll(filepath.Join(root, filepath.Dir(f)), 0o755)
		if err := os.WriteFile(filepath.Join(root, f), data, info.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// runAzuriteInstall runs scripts/azurite.sh install in a copy of its files with npm pointed at registry.
func runAzuriteInstall(t *testing.T, registry string, timeout string) (string, time.Duration, error) {
	t.Helper()
	if _, err := exec.LookPath("npm"); err != nil {
		t.Fatalf("no npm: %v", err)
	}
	root := copyRepoFiles(t, "scripts/azurite.sh", "scripts/npm-ci.sh", "tools/azurite/package.json", "tools/azurite/package-lock.json")
	cmd := exec.Command("/bin/bash", filepath.Join(root, "scripts", "azurite.sh"), "install")
	cmd.Env = append(os.Environ(),
		"npm_config_registry="+registry,
		"npm_config_cache="+t.TempDir(), // nothing from an earlier install
		"npm_config_prefer_online=true",
		"STANDBY_NPM_TIMEOUT="+timeout)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	return string(out), time.Since(start), err
}

// A registry that accepts connections and never answers: npm ci is stopped at the bound, with a message
// naming the registry (never its credentials) and the bound.
func TestAzuriteInstallIsBoundedWhenTheRegistryHangs(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var held []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			held = append(held, c) // accepted, never answered
		}
	}()
	registry := "http://user:s3cr3t-token@" + l.Addr().String() + "/"
	out, took, err := runAzuriteInstall(t, registry, "6")
	if err == nil {
		t.Fatalf("install succeeded against a registry that never answers:\n%s", out)
	}
	if took > 30*time.Second {
		t.Errorf("install took %v with a 6 s bound", took)
	}
	for _, want := range []string{"up to 6 s", "did not finish within 6 s", "http://" + l.Addr().String() + "/"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "s3cr3t-token") {
		t.Errorf("the registry's credentials are printed:\n%s", out)
	}
}

// A registry that refuses connections: npm ci fails on its own, quickly, and the script says so.
func TestAzuriteInstallNamesARefusedRegistry(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	out, took, err := runAzuriteInstall(t, "http://"+addr+"/", "120")
	if err == nil {
		t.Fatalf("install succeeded against a closed port:\n%s", out)
	}
	if took > 90*time.Second {
		t.Errorf("install took %v against a refusing registry", took)
	}
	if !strings.Contains(out, "npm ci failed") || !strings.Contains(out, "http://"+addr+"/") {
		t.Errorf("the failure does not name npm ci and the registry:\n%s", out)
	}
}
