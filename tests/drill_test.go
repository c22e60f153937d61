package tests

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/standby-dr/standby/shared/replication"
	"github.com/standby-dr/standby/shared/standin/qemu"
	"github.com/standby-dr/standby/shared/testkit/testenv"
)

type drillView struct {
	ID              string     `json:"id"`
	State           string     `json:"state"`
	Slot            *time.Time `json:"slot"`
	Point           string     `json:"point"`
	PointAgeSeconds float64    `json:"pointAgeSeconds"`
	RTOSeconds      float64    `json:"rtoSeconds"`
	VMs             []struct {
		Name     string `json:"name"`
		Evidence string `json:"evidence"`
	} `json:"vms"`
	Checks []struct {
		Name     string `json:"name"`
		Passed   bool   `json:"passed"`
		ExitCode int    `json:"exitCode"`
		Output   string `json:"output"`
		Reason   string `json:"reason"`
	} `json:"checks"`
	Steps []struct {
		Name  string `json:"name"`
		State string `json:"state"`
	} `json:"steps"`
	Cleanup string `json:"cleanup"`
	Error   string `json:"error"`
}

// A drill scheduled a minute ahead fires from the timer on the local stack: the group's two VMs come up
// from their replicated disks in the isolated test network, the SQLite workload's own integrity check
// passes in the database VM (through the run channel), an HTTP probe of its port from the web VM
// answers 200, and the report is served and printed. A drill whose check fails ends Failed with the
// check's output, and its cleanup removes every VM, disk and NIC.
func TestScheduledDrillRunsTheWorkloadsCheck(t *testing.T) {
	rc := &alertReceiver{secret: []byte("drill-hmac-key"), posts: map[string]int{}, alerts: map[string]replication.Alert{}}
	receiver := httptest.NewServer(rc)
	defer receiver.Close()
	s, computeDir, images := newComputeStackWith(t, "*/1 * * * * *", map[string]string{"StandbyAlertWebhook": receiver.URL + "/alerts",
		"StandbyWebhookSecret": "drill-hmac-key", "StandbyWebhookAllowPrivate": "true"})
	tools := needTools(t, "mke2fs", "debugfs")
	dir := t.TempDir()
	osDisk := guestWithWorkload(t, images, tools, dir)
	// The data disk: an ext4 filesystem holding the workload's database, twenty transactions in.
	dbDir := filepath.Join(dir, "data")
	os.MkdirAll(dbDir, 0o755)
	run(t, filepath.Join(images.Dir, "sqlwork"), filepath.Join(dbDir, "db.sqlite"), "20")
	dataDisk := filepath.Join(dir, "data.img")
	run(t, tools["mke2fs"], "-q", "-t", "ext4", "-d", dbDir, "-F", dataDisk, "16M")
	webOS := filepath.Join(dir, "web-os.img")
	run(t, "cp", "--sparse=always", osDisk, webOS)
	osSize, _ := os.Stat(osDisk)
	check := `mkdir -p /data && mount -t ext4 /dev/vdb /data && sqlwork --check /data/db.sqlite`
	spec := filepath.Join(dir, "spec.json")
	writeSpec := func(checkCommand, schedule string) {
		body, _ := json.Marshal(map[string]any{
			"vms": []any{
				map[string]any{"name": "db", "subnet": "src/app", "disks": []any{
					map[string]any{"name": "os", "sizeBytes": osSize.Size(), "source": "file:" + osDisk, "role": "os"},
					map[string]any{"name": "data", "sizeBytes": 16 << 20, "source": "file:" + dataDisk}}},
				map[string]any{"name": "web", "subnet": "src/app", "disks": []any{
					map[string]any{"name": "os", "sizeBytes": osSize.Size(), "source": "file:" + webOS, "role": "os"}}}},
			"network": map[string]any{"mappings": []any{map[string]any{"source": "src/app", "target": "dr/app", "test": "drtest/app", "targetPrefix": "10.2.0.0/24", "testPrefix": "10.3.0.0/24"}}},
			"policy":  map[string]any{"crashConsistentIntervalSeconds": 60},
			"drill": map[string]any{"schedule": schedule, "checks": []any{
				map[string]any{"name": "db-integrity", "vm": "db", "command": checkCommand, "expectOutput": "(?m)^ok$", "timeoutSeconds": 60},
				// The application's own port, probed from the other VM in the isolated network.
				map[string]any{"name": "serve", "vm": "db", "command": "mkdir -p /www && echo ok > /www/index.html && httpd -p 8080 -h /www"},
				map[string]any{"name": "web-to-db", "vm": "web", "http": map[string]any{"vm": "db", "port": 8080, "path": "/index.html"}}}},
		})
		os.WriteFile(spec, body, 0o644)
	}
	writeSpec(check, "* * * * *")
	group := testenv.Unique("drill")
	startAgent(t, s, "-group", group, "-spec", spec, "-state", t.TempDir(), "-duration", "6m")
	waitFor(t, 90*time.Second, "the group to be protected with a point", func() bool {
		_, _, body := s.app.call(t, "GET", "/api/v1/groups/"+group, "test-key", "")
		return strings.Contains(body, `"state": "Protected"`) && strings.Contains(body, `"lastRecoveryPoint"`)
	})

	// The timer starts the drill at the next minute's slot.
	var d drillView
	waitFor(t, 4*time.Minute, "the scheduled drill to end", func() bool {
		_, _, body := s.app.call(t, "GET", "/api/v1/groups/"+group+"/drills", "test-key", "")
		var list struct{ Drills []drillView }
		json.Unmarshal([]byte(body), &list)
		if len(list.Drills) == 0 {
			return false
		}
		d = list.Drills[0]
		return d.State == "Succeeded" || d.State == "Failed"
	})
	status, _, body := s.app.call(t, "GET", "/api/v1/groups/"+group+"/drills/"+d.ID, "test-key", "")
	if status != http.StatusOK {
		t.Fatalf("GET the drill: %d %s", status, body)
	}
	json.Unmarshal([]byte(body), &d)
	if d.State != "Succeeded" || d.Slot == nil || d.RTOSeconds <= 0 || len(d.Checks) != 3 || !d.Checks[0].Passed || !strings.HasSuffix(d.Checks[0].Output, "20 transactions\nok\n") ||
		!d.Checks[2].Passed || len(d.VMs) != 2 || !strings.Contains(d.VMs[0].Evidence, qemu.Healthy) {
		t.Fatalf("the scheduled drill's report:\n%s", body)
	}
	t.Logf("scheduled drill %s: point %s (%.0f s old), RTO %.1f s, check %q", d.ID, d.Point, d.PointAgeSeconds, d.RTOSeconds, d.Checks[0].Output)
	assertCleanedUp(t, computeDir, group)
	// The report an auditor keeps, as the CLI prints it.
	report := standbyCLI(t, s, "drill-report", group, d.ID)
	for _, want := range []string{"Drill " + d.ID + " of group " + group + ": Succeeded", "scheduled, slot", "check db-integrity on db (command", "check web-to-db on web (http",
		"PASSED", "| ok", qemu.Healthy, "run-checks", "end-drill", "cleanup   delete-test-vms: "} {
		if !strings.Contains(report, want) {
			t.Fatalf("the printed report lacks %q:\n%s", want, report)
		}
	}
	t.Logf("the printed report:\n%s", report)

	// A check that fails: the drill ends Failed with its output, and still cleans up.
	writeSpec(check+` && test -e /data/no-such-file`, "")
	status, _, body = s.app.call(t, "PUT", "/api/v1/groups/"+group, "test-key", mustRead(t, spec))
	if status != http.StatusOK {
		t.Fatalf("changing the drill: %d %s", status, body)
	}
	location := s.postJob(t, "/api/v1/groups/"+group+"/drills", "")
	var job jobView
	waitFor(t, 4*time.Minute, "the failing drill to end", func() bool {
		_, _, body := s.app.call(t, "GET", location, "test-key", "")
		json.Unmarshal([]byte(body), &job)
		return job.State == "Succeeded" || job.State == "Failed"
	})
	_, _, body = s.app.call(t, "GET", "/api/v1/groups/"+group+"/drills/"+job.ID, "test-key", "")
	json.Unmarshal([]byte(body), &d)
	if job.State != "Failed" || !strings.Contains(job.Error, "1 of 3 checks failed: db-integrity (exit code 1, expected 0)") ||
		d.State != "Failed" || d.Checks[0].Passed || d.Checks[0].ExitCode != 1 || d.Cleanup == "" {
		t.Fatalf("the failing drill: %+v\n%s", job, body)
	}
	assertCleanedUp(t, computeDir, group)
	// The failure's alert reaches the webhook, signed (the receiver checks the HMAC itself).
	waitFor(t, time.Minute, "the drill's job-failed alert at the webhook", func() bool {
		ids, _ := rc.delivered(group, replication.AlertJobFailed, "")
		return len(ids) == 1
	})
	rc.mu.Lock()
	if len(rc.bad) > 0 {
		t.Fatalf("the webhook got bad deliveries: %v", rc.bad)
	}
	rc.mu.Unlock()
	_, _, view := s.app.call(t, "GET", "/api/v1/groups/"+group, "test-key", "")
	if !strings.Contains(view, `"lastDrillResult": "Failed"`) || !strings.Contains(view, `"lastSuccessfulDrillAt"`) || !strings.Contains(view, `"ready": true`) {
		t.Fatalf("the group's readiness:\n%s", view)
	}
}

// assertCleanedUp fails unless the group's test VMs, disks and NICs are gone from the local compute.
func assertCleanedUp(t *testing.T, computeDir, group string) {
	t.Helper()
	for _, kind := range []string{"vms/*", "disks/*.img", "networkInterfaces/*.json"} {
		if left, _ := filepath.Glob(filepath.Join(computeDir, group+"-asr", kind)); len(left) != 0 {
			t.Errorf("the drill's cleanup left %v", left)
		}
	}
}

func mustRead(t *testing.T, path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
