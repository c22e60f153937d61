package tests

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/standby-dr/standby/shared/recovery"
	"github.com/standby-dr/standby/shared/standin/localcompute"
	"github.com/standby-dr/standby/shared/testkit/testenv"
)

// webhookReceiver is the operator's endpoint a plan's webhook action calls: it checks each call's
// signature and answers what status says.
type webhookReceiver struct {
	mu       sync.Mutex
	status   int
	calls    []recovery.WebhookPayload
	badSigns int
}

func (w *webhookReceiver) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	w.mu.Lock()
	defer w.mu.Unlock()
	if r.Header.Get(recovery.SignatureHeader) != recovery.Sign([]byte(planSecret), body) {
		w.badSigns++
		http.Error(rw, "bad signature", http.StatusUnauthorized)
		return
	}
	var p recovery.WebhookPayload
	json.Unmarshal(body, &p)
	w.calls = append(w.calls, p)
	rw.WriteHeader(w.status)
	io.WriteString(rw, "receiver says "+http.StatusText(w.status))
}

const planSecret = "plan-webhook-secret-for-tests"

// vmStarts reads when the local compute booted each VM of the resource group, by VM name.
func vmStarts(t *testing.T, dir string) map[string]time.Time {
	out := map[string]time.Time{}
	files, _ := filepath.Glob(filepath.Join(dir, "vms", "*", "vm.json"))
	for _, f := range files {
		var vm struct {
			Started time.Time `json:"started"`
		}
		data, _ := os.ReadFile(f)
		json.Unmarshal(data, &vm)
		out[filepath.Base(filepath.Dir(f))] = vm.Started
	}
	return out
}

// started is the boot time of the one VM whose name starts with prefix.
func started(t *testing.T, starts map[string]time.Time, prefix string) time.Time {
	t.Helper()
	var found []time.Time
	for name, at := range starts {
		if strings.HasPrefix(name, prefix+"-") {
			found = append(found, at)
		}
	}
	if len(found) != 1 {
		t.Fatalf("VMs named %s-*: %d, want 1 (%v)", prefix, len(found), starts)
	}
	return found[0]
}

// followPlanJob waits for a plan job to end, acknowledging its manual action when it waits for one and
// kill -9ing the handler after every boot-group step (devhost restarts it). It returns the job and the
// time of the acknowledgement.
func followPlanJob(t *testing.T, s *stack, location, ack string, kill bool) (jobView, time.Time) {
	t.Helper()
	stepDone := regexp.MustCompile(`"msg":"job step done".*?"step":"(bg[0-9]-[a-z]+)"`)
	var job jobView
	var acked time.Time
	var killed []string
	seen := len(s.app.out.String())
	waitFor(t, 4*time.Minute, "plan job "+location, func() bool {
		_, _, body := s.app.call(t, "GET", location, "test-key", "")
		json.Unmarshal([]byte(body), &job)
		for _, st := range job.Steps {
			if st.State == "running" && strings.Contains(st.Outcome, "waiting for an operator to acknowledge "+ack) && acked.IsZero() {
				acked = time.Now()
				status, _, resp := s.app.call(t, "POST", "/api/v1/jobs/"+job.ID+"/acknowledge", "test-key", `{"action":"`+ack+`"}`)
				if status != 200 {
					t.Fatalf("acknowledge: %d %s", status, resp)
				}
			}
		}
		if out := s.app.out.String(); kill {
			for _, m := range stepDone.FindAllStringSubmatch(out[seen:], -1) {
				if pid := handlerPID(out); pid > 0 && !slices.Contains(killed, m[1]) {
					syscall.Kill(pid, syscall.SIGKILL)
					killed = append(killed, m[1])
				}
			}
			seen = len(out)
		}
		return job.State == "Succeeded" || job.State == "Failed"
	})
	if kill {
		t.Logf("handler killed after %v", killed)
		waitFor(t, 30*time.Second, "the handler back after the last kill", func() bool {
			status, _, _ := s.app.call(t, "GET", location, "test-key", "")
			return status == http.StatusOK
		})
	}
	return job, acked
}

// A recovery plan of two consistency groups in three boot groups — db, then app (after a webhook),
// then web (after a command run in the app VM) — with a manual action after db, and a drill: a drill whose webhook fails ends Failed naming it with the
// VM it left running, and its cleanup removes that; a drill with the handler killed after every
// boot-group step boots the VMs in order (the local compute's boot times), waits for the manual action,
// calls the webhook with a valid signature, and leaves no VM twice; its cleanup removes everything; a
// planned failover of the plan boots the VMs in order and loses nothing.
func TestRecoveryPlanBootsInOrderWithActions(t *testing.T) {
	images := vmImages(t)
	types, _ := filepath.Abs(filepath.Join("..", "..", "shared", "reference", "azure-types"))
	computeDir := t.TempDir()
	s := defineStack(t, "*/1 * * * * *", testenv.Storage(t, "target"), testenv.Storage(t, "target"), testenv.Storage(t, "source"))
	s.app.setValues(t, map[string]string{"StandbyCompute": "UseLocalCompute=true;Dir=" + computeDir + ";Images=" + images.Dir + ";Types=" + types,
		"StandbyWebhookSecret": planSecret, "StandbyWebhookAllowPrivate": "true"})
	s.app.start(t)
	t.Cleanup(func() { localcompute.StopAll(computeDir, localcompute.QEMU{}) })
	receiver := &webhookReceiver{status: http.StatusInternalServerError}
	hook := httptest.NewServer(receiver)
	defer hook.Close()

	dir := t.TempDir()
	image, err := os.ReadFile(images.OS)
	if err != nil {
		t.Fatal(err)
	}
	g1, g2, plan := testenv.Unique("plandb"), testenv.Unique("planweb"), testenv.Unique("plan")
	mapping := `"network":{"mappings":[{"source":"src/app","target":"dr/app","test":"drtest/app","targetPrefix":"10.2.0.0/24","testPrefix":"10.3.0.0/24"}]}`
	osDisk := func(vm string) string {
		path := filepath.Join(dir, vm+"-os.img")
		os.WriteFile(path, image, 0o644)
		return `{"name":"os","sizeBytes":` + itoa(len(image)) + `,"source":"file:` + path + `","role":"os"}`
	}
	data := filepath.Join(dir, "web-data.img")
	os.WriteFile(data, make([]byte, 8<<20), 0o644)
	spec1, spec2 := filepath.Join(dir, "g1.json"), filepath.Join(dir, "g2.json")
	os.WriteFile(spec1, []byte(`{"vms":[{"name":"db","subnet":"src/app","disks":[`+osDisk("db")+`]},
		{"name":"app","subnet":"src/app","disks":[`+osDisk("app")+`]}],`+mapping+`}`), 0o644)
	os.WriteFile(spec2, []byte(`{"vms":[{"name":"web","subnet":"src/app","disks":[`+osDisk("web")+`,
		{"name":"data","sizeBytes":8388608,"source":"file:`+data+`"}]}],`+mapping+`}`), 0o644)
	a1 := startAgent(t, s, "-group", g1, "-spec", spec1, "-state", t.TempDir(), "-marker-interval", "1s")
	a2 := startAgent(t, s, "-group", g2, "-spec", spec2, "-state", t.TempDir(), "-marker-interval", "1s",
		"-workload-rate", "1", "-workload-data-only")
	for _, g := range []string{g1, g2} {
		waitFor(t, 2*time.Minute, g+" protected with a point", func() bool {
			_, _, body := s.app.call(t, "GET", "/api/v1/groups/"+g, "test-key", "")
			return strings.Contains(body, `"state": "Protected"`) && strings.Contains(body, `"lastRecoveryPoint"`)
		})
	}

	// The plan; bad plans are refused naming the field, and nothing is stored.
	planJSON := `{"groups":["` + g1 + `","` + g2 + `"],"bootGroups":[
		{"name":"db","vms":["` + g1 + `/db"],"post":[{"name":"check-db","type":"manual","instructions":"check the database came up"}]},
		{"name":"app","vms":["` + g1 + `/app"],"pre":[{"name":"notify","type":"webhook","url":"` + hook.URL + `/hook","timeoutSeconds":5}]},
		{"name":"web","vms":["` + g2 + `/web"],"pre":[{"name":"check-app","type":"command","vm":"` + g1 + `/app","command":"hostname; test -s /var/lib/standby/boots"}]}]}`
	for bad, want := range map[string]string{
		strings.Replace(planJSON, `"`+g2+`/web"`, `"`+g1+`/db"`, 1):         "bootGroups[2].vms[0]: " + g1 + "/db is in boot group db already",
		strings.Replace(planJSON, `"`+g1+`/app"`, `"`+g1+`/nope"`, 1):       `bootGroups[1].vms[0]: \"` + g1 + `/nope\" is not a VM`,
		strings.Replace(planJSON, `"type":"manual"`, `"type":"runbook"`, 1): `bootGroups[0].post[0].type: \"runbook\"`,
	} {
		if status, _, body := s.app.call(t, "PUT", "/api/v1/plans/"+plan, "test-key", bad); status != 400 || !strings.Contains(body, want) {
			t.Errorf("bad plan: %d %s, want 400 %s", status, body, want)
		}
	}
	if status, _, _ := s.app.call(t, "GET", "/api/v1/plans/"+plan, "test-key", ""); status != 404 {
		t.Fatalf("a refused plan was stored: %d", status)
	}
	if status, _, body := s.app.call(t, "PUT", "/api/v1/plans/"+plan, "test-key", planJSON); status != 200 {
		t.Fatalf("PUT plan: %d %s", status, body)
	}
	rg := filepath.Join(computeDir, g1+"-asr")

	// A drill whose webhook fails: Failed, naming the action and what it left running.
	job, _ := followPlanJob(t, s, s.postJob(t, "/api/v1/plans/"+plan+"/failover", `{"type":"test"}`), "check-db", false)
	if job.State != "Failed" || !strings.Contains(job.Error, "boot group app pre action notify: POST "+hook.URL+"/hook answered 500") ||
		!strings.Contains(job.Error, "up and left running: "+g1+"/db") {
		t.Fatalf("drill with a failing webhook: %s %q", job.State, job.Error)
	}
	s.runJob(t, "/api/v1/plans/"+plan+"/cleanup-test-failover", "", 2*time.Minute)
	if left, _ := filepath.Glob(filepath.Join(rg, "vms", "*")); len(left) != 0 {
		t.Fatalf("cleanup left %v", left)
	}

	// A drill with the handler killed after every boot-group step: in order, each VM once.
	receiver.mu.Lock()
	receiver.status, receiver.calls = http.StatusOK, nil
	receiver.mu.Unlock()
	job, acked := followPlanJob(t, s, s.postJob(t, "/api/v1/plans/"+plan+"/failover", `{"type":"test"}`), "check-db", true)
	if job.State != "Succeeded" {
		t.Fatalf("drill: %s %q", job.State, job.Error)
	}
	checkBootOrder(t, rg, filepath.Join(computeDir, g2+"-asr"), acked)
	// The command action ran in the app VM (already up) before the web boot group, through the run channel.
	if got := job.Result["action:check-app"]; !strings.Contains(got, "ran in "+g1+"/app: exit code 0: standby-vm") {
		t.Fatalf("the command action: %q", got)
	}
	receiver.mu.Lock()
	if len(receiver.calls) == 0 || receiver.badSigns != 0 || receiver.calls[0].Action != "notify" || !slices.Contains(receiver.calls[0].VMs, g1+"/db") {
		t.Fatalf("webhook calls %+v, %d with a bad signature", receiver.calls, receiver.badSigns)
	}
	receiver.mu.Unlock()
	s.runJob(t, "/api/v1/plans/"+plan+"/cleanup-test-failover", "", 2*time.Minute)
	for _, d := range []string{rg, filepath.Join(computeDir, g2+"-asr")} {
		for _, kind := range []string{"vms/*", "disks/*.img", "networkInterfaces/*.json"} {
			if left, _ := filepath.Glob(filepath.Join(d, kind)); len(left) != 0 {
				t.Errorf("cleanup left %v", left)
			}
		}
	}

	// The plan's drill: the same test failover in boot-group order, then the drill's check in the app
	// VM, then its cleanup, in one job; the report is the plan's.
	drillPlan := strings.Replace(planJSON, `]}]}`, `]}],"drill":{"checks":[{"name":"app-booted","vm":"`+g1+`/app","command":"test -s /var/lib/standby/boots"}]}}`, 1)
	if status, _, body := s.app.call(t, "PUT", "/api/v1/plans/"+plan, "test-key", drillPlan); status != 200 {
		t.Fatalf("PUT plan with a drill: %d %s", status, body)
	}
	job, _ = followPlanJob(t, s, s.postJob(t, "/api/v1/plans/"+plan+"/drills", ""), "check-db", false)
	if job.State != "Succeeded" {
		t.Fatalf("the plan's drill: %s %q", job.State, job.Error)
	}
	if report := standbyCLI(t, s, "plan", "drill-report", plan, job.ID); !strings.Contains(report, "Drill "+job.ID+" of plan "+plan+": Succeeded") ||
		!strings.Contains(report, "check app-booted on "+g1+"/app (command") || !strings.Contains(report, "PASSED") || !strings.Contains(report, "wait-cleanup") {
		t.Fatalf("the plan drill's report:\n%s", report)
	}
	for _, d := range []string{rg, filepath.Join(computeDir, g2+"-asr")} {
		for _, kind := range []string{"vms/*", "disks/*.img", "networkInterfaces/*.json"} {
			if left, _ := filepath.Glob(filepath.Join(d, kind)); len(left) != 0 {
				t.Errorf("the plan drill's cleanup left %v", left)
			}
		}
	}

	// A planned failover of the whole plan, from the CLI: the agents stop, nothing is lost, the VMs boot
	// in order.
	if out := standbyCLI(t, s, "plan", "show", plan); !strings.Contains(out, `"name": "check-db"`) {
		t.Fatalf("standby plan show:\n%s", out)
	}
	queued := strings.Fields(standbyCLI(t, s, "plan", "failover", plan, "--type", "planned"))
	if len(queued) < 3 || queued[2] != "(plan-planned)" {
		t.Fatalf("standby plan failover: %v", queued)
	}
	job, acked = followPlanJob(t, s, "/api/v1/jobs/"+queued[1], "check-db", false)
	if job.State != "Succeeded" {
		t.Fatalf("planned failover of the plan: %s %q", job.State, job.Error)
	}
	a1.wait(t, 30*time.Second)
	a2.wait(t, 30*time.Second)
	checkBootOrder(t, rg, filepath.Join(computeDir, g2+"-asr"), acked)
	// The command action ran in the app VM (already up) before the web boot group, through the run channel.
	if got := job.Result["action:check-app"]; !strings.Contains(got, "ran in "+g1+"/app: exit code 0: standby-vm") {
		t.Fatalf("the command action: %q", got)
	}
	compareWithSources(t, spec1, g1+"-failover")
	compareWithSources(t, spec2, g2+"-failover")
}

// checkBootOrder: db booted, then (after the manual action's acknowledgement) app, then web; one each.
func checkBootOrder(t *testing.T, rg1, rg2 string, acked time.Time) {
	t.Helper()
	s1, s2 := vmStarts(t, rg1), vmStarts(t, rg2)
	db, app, web := started(t, s1, "db"), started(t, s1, "app"), started(t, s2, "web")
	if !(db.Before(acked) && acked.Before(app) && app.Before(web)) {
		t.Fatalf("boot order: db %s, acknowledged %s, app %s, web %s", db.Format(time.StampMilli), acked.Format(time.StampMilli),
			app.Format(time.StampMilli), web.Format(time.StampMilli))
	}
}
