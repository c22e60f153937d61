package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The systemd units the README names ship in infra/agent and systemd's own judge accepts them:
// systemd-analyze verify, in a root that holds this machine's systemd units, the agent's binary where
// the units run it, and the settings files they read, loads the agent, the attachment and the data disk's
// mount with everything they pull in, and says nothing (it names unknown keys, commands that are not
// there, and ordering cycles). The same judge shows it can fail: the mount without _netdev would be
// ordered before local-fs.target and after the network, a cycle systemd breaks by dropping jobs at boot.
func TestAgentUnitsVerify(t *testing.T) {
	analyze := needTools(t, "systemd-analyze")["systemd-analyze"]
	root := t.TempDir()
	system := "/usr/lib/systemd/system"
	if _, err := os.Stat(system); err != nil {
		system = "/lib/systemd/system"
	}
	units := filepath.Join(root, "etc", "systemd", "system")
	for _, dir := range []string{units, filepath.Join(root, "usr", "lib", "systemd"), filepath.Join(root, "usr", "local", "bin"), filepath.Join(root, "etc", "standby")} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	run(t, "cp", "-r", system, filepath.Join(root, "usr", "lib", "systemd", "system"))
	shipped, _ := filepath.Glob(filepath.Join("..", "infra", "agent", "*"))
	if len(shipped) != 3 {
		t.Fatalf("infra/agent holds %d files, want the agent's, the attachment's and the mount's units", len(shipped))
	}
	run(t, "cp", append(shipped, units)...)
	run(t, "cp", filepath.Join(binDir, "agent"), filepath.Join(root, "usr", "local", "bin", "standby-agent"))
	writeFile(t, filepath.Join(root, "etc", "standby", "agent.env"), "STANDBY_AGENT_ARGS=-group g1 -source vm1/data=/dev/sdc\n")
	writeFile(t, filepath.Join(root, "etc", "standby", "nbd-nbd0.env"), "STANDBY_EXPORT=vm1/data\n")
	verify := func(names ...string) string {
		out, err := exec.Command(analyze, append([]string{"verify", "--root=" + root}, names...)...).CombinedOutput()
		if err != nil {
			return strings.TrimSpace(string(out)) + "\n(" + err.Error() + ")"
		}
		return strings.TrimSpace(string(out))
	}
	if out := verify("standby-agent.service", "standby-nbd@nbd0.service", "data.mount"); out != "" {
		t.Fatalf("systemd-analyze verify:\n%s", out)
	}
	mount := filepath.Join(units, "data.mount")
	data, _ := os.ReadFile(mount)
	writeFile(t, mount, strings.Replace(string(data), "Options=_netdev", "Options=defaults", 1))
	if out := verify("data.mount"); !strings.Contains(out, "ordering cycle") {
		t.Fatalf("the judge let a mount without _netdev through:\n%s", out)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
