package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/standby-dr/standby/shared/api/apiv1"
	"github.com/standby-dr/standby/shared/testkit/testenv"
)

// browser is a headless Chromium (Debian's) driven over the DevTools protocol. Every console message
// of level warning or error, and every uncaught exception, is recorded: the console must raise none.
type browser struct {
	ctx      context.Context
	mu       sync.Mutex
	messages []string
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("STANDBY_REQUIRE_CHROMIUM") != "" {
			t.Fatalf("chromium is not installed (make vm-image installs it): %v", err)
		}
		t.Skip("chromium is not installed: make vm-image installs it (STANDBY_REQUIRE_CHROMIUM=1 makes this a failure)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.WindowSize(1280, 800))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	b := &browser{ctx: ctx}
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil { // the first run starts the browser
		t.Fatalf("starting Chromium: %v", err)
	}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleWarning || m.IsException() {
				b.mu.Lock()
				b.messages = append(b.messages, fmt.Sprintf("%s (%s %s:%d)", m, m.Source, m.URL, m.Line))
				b.mu.Unlock()
			}
		}
	}()
	// The recorder records: a message the page writes is seen.
	b.eval(t, `console.error("recorder check"), 1`)
	waitFor(t, 5*time.Second, "the console recorder", func() bool {
		m := b.takeMessages()
		return len(m) == 1 && strings.Contains(m[0], "recorder check")
	})
	return b
}

func (b *browser) run(t *testing.T, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression in the page, its value as JSON.
func (b *browser) eval(t *testing.T, expr string) json.RawMessage {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[json.RawMessage](expr))
	if err != nil {
		t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// takeMessages returns and forgets the messages so far.
func (b *browser) takeMessages() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	m := b.messages
	b.messages = nil
	return m
}

// screenshot writes the viewport as .local/screenshots/<name>.png.
func (b *browser) screenshot(t *testing.T, name string) {
	t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	dir := filepath.Join(repoRoot(t), ".local", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

func repoRoot(t *testing.T) string {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// text is the element's text ("" when there is none).
func (b *browser) text(t *testing.T, sel string) string {
	t.Helper()
	var s string
	json.Unmarshal(b.eval(t, fmt.Sprintf(`(document.querySelector(%q) || {}).textContent || ""`, sel)), &s)
	return s
}

// waitText waits until the element's text satisfies ok.
func (b *browser) waitText(t *testing.T, sel string, limit time.Duration, ok func(string) bool) string {
	t.Helper()
	var text string
	waitFor(t, limit, sel+" to read as expected", func() bool { text = b.text(t, sel); return ok(text) })
	return text
}

// tabTo presses Tab until the focused element matches sel: the console is usable from the keyboard.
func (b *browser) tabTo(t *testing.T, sel string) {
	t.Helper()
	for range 120 {
		if string(b.eval(t, fmt.Sprintf(`!!document.activeElement && document.activeElement.matches(%q)`, sel))) == "true" {
			return
		}
		b.run(t, "pressing Tab", chromedp.KeyEvent(kb.Tab))
	}
	t.Fatalf("Tab never reached %s", sel)
}

// fitsWidth fails when the page is wider than the viewport (tables must scroll inside their wrapper).
func (b *browser) fitsWidth(t *testing.T, page string) {
	t.Helper()
	var over int
	json.Unmarshal(b.eval(t, `document.documentElement.scrollWidth - window.innerWidth`), &over)
	if over > 0 {
		t.Errorf("%s is %d px wider than the viewport", page, over)
	}
}

// The console against the real local stack: the groups page lists a protected group with its RPO; the
// group page charts the RPO history and puts the points the API lists on the timeline; a test failover
// started from the keyboard reaches Succeeded, and its cleanup too; a phone's width fits; a wrong key
// gets a clear message. Screenshots go to .local/screenshots/.
func TestConsoleInChromium(t *testing.T) {
	b := newBrowser(t)
	s := defineStack(t, "*/1 * * * * *", testenv.Storage(t, "target"), testenv.Storage(t, "target"), testenv.Storage(t, "source"))
	s.app.setValues(t, map[string]string{"DevhostFunctionKey__reader": "reader-key"})
	s.app.start(t)
	group, state, spec := testenv.Unique("console"), t.TempDir(), writeSpec(t, 1, 2)
	setPolicy(t, spec, map[string]int{"crashConsistentIntervalSeconds": 30})
	p := startAgent(t, s, "-group", group, "-spec", spec, "-state", state, "-workload-rate", "1", "-duration", "5m")
	view := func() apiv1.GroupView { return s.groupView(t, group) }
	waitFor(t, 90*time.Second, "the group protected with two points", func() bool {
		v := view()
		return v.State == "Protected" && v.Retention != nil && v.Retention.Points >= 2
	})
	// The agent stops, so the points the page shows and the ones the API lists are the same.
	p.cmd.Process.Signal(os.Interrupt)
	<-p.done
	_, _, body := s.app.call(t, "GET", "/api/v1/groups/"+group+"/recovery-points?limit=1000", "test-key", "")
	var page apiv1.PointsPage
	if err := json.Unmarshal([]byte(body), &page); err != nil {
		t.Fatal(err)
	}
	var apiPoints []string
	for _, pt := range page.Points {
		apiPoints = append(apiPoints, pt.ID)
	}
	slices.Sort(apiPoints)
	base := s.apiBase() + "/console/"

	// The groups page, signed in by ?code=, which the page then drops from the address bar.
	row := fmt.Sprintf(`table#groups tr[data-group=%q]`, group)
	b.run(t, "opening the console", chromedp.Navigate(base+"?code=test-key"), chromedp.WaitVisible(chromedp.CSS(row)))
	if href := string(b.eval(t, `location.href`)); strings.Contains(href, "test-key") {
		t.Errorf("the key stayed in the address bar: %s", href)
	}
	rpo := b.waitText(t, row+" .rpo", 10*time.Second, func(s string) bool { return strings.TrimSpace(s) != "" && s != "—" })
	b.waitText(t, "#role", 5*time.Second, func(s string) bool { return s == "operator" })
	t.Logf("groups page: RPO %q", rpo)
	b.screenshot(t, "groups-1280x800")

	// The group page: the chart has the samples, the timeline the API's points.
	b.run(t, "opening the group", chromedp.Click(chromedp.CSS(row+" a")), chromedp.WaitVisible(chromedp.CSS(`svg#timeline`)))
	var samples int
	b.run(t, "reading the chart", chromedp.WaitVisible(chromedp.CSS(`svg#rpo-chart circle.sample`)))
	json.Unmarshal(b.eval(t, `document.querySelectorAll('svg#rpo-chart circle.sample').length`), &samples)
	var shown []string
	waitFor(t, 10*time.Second, "the timeline to show the API's points", func() bool {
		json.Unmarshal(b.eval(t, `[...document.querySelectorAll('svg#timeline [data-point-id]')].map(e => e.getAttribute('data-point-id'))`), &shown)
		slices.Sort(shown)
		return slices.Equal(shown, apiPoints)
	})
	windowShaded := string(b.eval(t, `!!document.querySelector('svg#timeline rect.window')`)) == "true"
	if samples < 1 || !windowShaded {
		t.Errorf("the chart has %d samples, the window shaded: %v", samples, windowShaded)
	}
	t.Logf("group page: %d RPO samples, %d points on the timeline", samples, len(shown))
	b.screenshot(t, "group-1280x800")

	if st := b.text(t, "#replication-state"); st != "Continuous" && st != "Catching up" {
		t.Errorf("replication of a protected group reads %q", st)
	}
	// Only what the group's state admits is offered (no test failover to clean up yet), and the page
	// says why the rest is not.
	if present := string(b.eval(t, `!!document.querySelector('button[data-action="cleanup-test"]')`)); present != "false" {
		t.Error("Clean up test is offered with no test failover to clean up")
	}
	if held := b.text(t, "#not-offered"); !strings.Contains(held, "Clean up test: no test failover to clean up") || !strings.Contains(held, "Commit: ") {
		t.Errorf("the actions not offered: %q", held)
	}
	// A test failover from the keyboard alone: Tab to the action, Enter, Tab to Start, Enter.
	b.tabTo(t, `button[data-action="test-failover"]`)
	b.run(t, "opening the dialog", chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.CSS(`dialog#action-dialog[open] #point-choice`)))
	b.screenshot(t, "test-failover-dialog-1280x800")
	b.tabTo(t, `#action-submit`)
	b.run(t, "starting the test failover", chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.CSS(`#job-state`)))
	b.waitText(t, "#job-state", 2*time.Minute, func(s string) bool { return s == "Succeeded" || s == "Failed" })
	b.screenshot(t, "test-failover-job-1280x800")
	if state := b.text(t, "#job-state"); state != "Succeeded" {
		t.Fatalf("the test failover ended %s", state)
	}
	var steps int
	json.Unmarshal(b.eval(t, `document.querySelectorAll('ol#job-steps > li').length`), &steps)
	if steps < 2 {
		t.Errorf("the job page shows %d steps", steps)
	}
	// Its cleanup, with the mouse.
	b.run(t, "back to the group", chromedp.Navigate(base+"#/groups/"+group), chromedp.WaitVisible(chromedp.CSS(`button[data-action="cleanup-test"]`)),
		chromedp.Click(chromedp.CSS(`button[data-action="cleanup-test"]`)), chromedp.WaitVisible(chromedp.CSS(`dialog#action-dialog[open]`)),
		chromedp.Click(chromedp.CSS(`#action-submit`)), chromedp.WaitVisible(chromedp.CSS(`#job-state`)))
	if state := b.waitText(t, "#job-state", 2*time.Minute, func(s string) bool { return s == "Succeeded" || s == "Failed" }); state != "Succeeded" {
		t.Fatalf("the cleanup ended %s", state)
	}
	// A drill (no checks, no compute: the VMs' definitions and the cleanup), then its report, printable.
	b.run(t, "a drill", chromedp.Navigate(base+"#/groups/"+group), chromedp.WaitVisible(chromedp.CSS(`button[data-action="drill"]`)),
		chromedp.Click(chromedp.CSS(`button[data-action="drill"]`)), chromedp.WaitVisible(chromedp.CSS(`dialog#action-dialog[open]`)),
		chromedp.Click(chromedp.CSS(`#action-submit`)), chromedp.WaitVisible(chromedp.CSS(`#job-state`)))
	if state := b.waitText(t, "#job-state", 2*time.Minute, func(s string) bool { return s == "Succeeded" || s == "Failed" }); state != "Succeeded" {
		t.Fatalf("the drill ended %s", state)
	}
	b.run(t, "the group's drills", chromedp.Navigate(base+"#/groups/"+group), chromedp.WaitVisible(chromedp.CSS(`table#drills tbody tr a`)))
	if ready := b.text(t, "#ready"); ready != "Yes" {
		t.Errorf("readiness after a successful drill: %q", ready)
	}
	if last := b.text(t, "#last-test"); !strings.Contains(last, "Succeeded") || !strings.Contains(last, "point rp-") {
		t.Errorf("the last test failover: %q", last)
	}
	b.run(t, "the drill's report", chromedp.Click(chromedp.CSS(`table#drills tbody tr a`)), chromedp.WaitVisible(chromedp.CSS(`#drill-report`)))
	if result := b.waitText(t, "#drill-result", 10*time.Second, func(s string) bool { return s != "" }); result != "Succeeded" {
		t.Errorf("the report's result: %q", result)
	}
	b.run(t, "printing", emulateMedia("print"))
	if shown := string(b.eval(t, `['.topbar', '#print-report', '#drill-report'].map(s => document.querySelector(s).getClientRects().length > 0).join('/')`)); shown != `"false/false/true"` {
		t.Errorf("printed, the top bar, the print button and the report show: %s (want only the report)", shown)
	}
	b.screenshot(t, "drill-report-print")
	b.run(t, "the screen again", emulateMedia("screen"))
	b.run(t, "the jobs page", chromedp.Navigate(base+"#/jobs"), chromedp.WaitVisible(chromedp.CSS(`table#jobs`)))
	var jobs int
	json.Unmarshal(b.eval(t, `document.querySelectorAll('table#jobs tbody tr').length`), &jobs)
	if jobs < 2 {
		t.Errorf("the jobs page lists %d jobs, want the test failover and its cleanup", jobs)
	}
	b.screenshot(t, "jobs-1280x800")

	// A planned failover asks for the group's name, typed: Start stays disabled until it matches.
	b.run(t, "the planned failover dialog", chromedp.Navigate(base+"#/groups/"+group), chromedp.WaitVisible(chromedp.CSS(`button[data-action="planned-failover"]`)),
		chromedp.Click(chromedp.CSS(`button[data-action="planned-failover"]`)), chromedp.WaitVisible(chromedp.CSS(`dialog#action-dialog[open] #confirm-name`)))
	disabled := func() bool { return string(b.eval(t, `document.querySelector('#action-submit').disabled`)) == "true" }
	if !disabled() {
		t.Error("Start is enabled before the group's name is typed")
	}
	b.run(t, "a wrong name", chromedp.SendKeys(chromedp.CSS(`#confirm-name`), group[:len(group)-1]))
	if !disabled() {
		t.Error("Start is enabled with the name mistyped")
	}
	b.run(t, "the name", chromedp.SendKeys(chromedp.CSS(`#confirm-name`), group[len(group)-1:]))
	if disabled() {
		t.Error("Start stays disabled with the name typed")
	}
	b.screenshot(t, "planned-failover-dialog-1280x800")
	b.run(t, "closing the dialog", chromedp.KeyEvent(kb.Escape), chromedp.WaitNotVisible(chromedp.CSS(`dialog#action-dialog`)))
	if v := view(); v.State != "Protected" {
		t.Fatalf("the group is %s after the dialog was closed", v.State)
	}

	// At 1280 px the groups table shows every column; times carry their zone; an app-consistent
	// interval of 0 reads "off".
	b.run(t, "the groups page", chromedp.Navigate(base+"#/groups"), chromedp.WaitVisible(chromedp.CSS(`table#groups`)))
	if fits := string(b.eval(t, `(() => { const w = document.querySelector('#groups').closest('.table-wrap'); return w.scrollWidth <= w.clientWidth; })()`)); fits != "true" {
		t.Error("the groups table is wider than its box at 1280 px: a column is cut off")
	}
	b.run(t, "the group page", chromedp.Navigate(base+"#/groups/"+group), chromedp.WaitVisible(chromedp.CSS(`#replication-state`)))
	if zone := string(b.eval(t, `/(UTC|GMT|[A-Z]{3,5})$/.test(document.querySelector('#view time.at').textContent.trim())`)); zone != "true" {
		t.Errorf("a time without its zone: %q", b.text(t, "#view time.at"))
	}
	if body := b.text(t, "#view"); !strings.Contains(body, "app-consistent off") || strings.Contains(body, "every 0 s") {
		t.Error("an app-consistent interval of 0 does not read as off")
	}
	// With the API unreachable the page says so and marks what it shows as stale; back, it is live.
	b.run(t, "the API down", blockAPI(true))
	if status := b.waitText(t, "#status", 20*time.Second, func(s string) bool { return s != "" }); !strings.Contains(status, "may be out of date") ||
		string(b.eval(t, `document.querySelector('#view').classList.contains('stale')`)) != "true" {
		t.Errorf("with the API down the page says %q and is not marked stale", status)
	}
	b.screenshot(t, "group-stale-1280x800")
	b.run(t, "the API back", blockAPI(false))
	b.waitText(t, "#status", 20*time.Second, func(s string) bool { return s == "" })
	if string(b.eval(t, `document.querySelector('#view').classList.contains('stale')`)) != "false" {
		t.Error("the page stays marked stale with the API back")
	}
	b.takeMessages() // the blocked calls' own lines

	// A phone's width: every page fits, and what matters in its tables is on screen.
	visible := func(sel string) bool {
		return string(b.eval(t, fmt.Sprintf(`(() => { const e = document.querySelector(%q); if (!e) return false; const r = e.getBoundingClientRect(); return r.width > 0 && r.left >= 0 && r.right <= window.innerWidth; })()`, sel))) == "true"
	}
	b.run(t, "a phone's viewport", chromedp.EmulateViewport(375, 740, chromedp.EmulateMobile))
	for name, hash := range map[string]string{"groups": "#/groups", "group": "#/groups/" + group, "jobs": "#/jobs"} {
		b.run(t, "the "+name+" page on a phone", chromedp.Navigate(base+hash), chromedp.WaitVisible(chromedp.CSS(`#view`)), chromedp.Sleep(time.Second))
		b.fitsWidth(t, name)
		b.screenshot(t, name+"-375x740")
		if sel := map[string]string{"group": "#disks td.crash-consistent", "jobs": "#jobs td[data-label=State] .badge"}[name]; sel != "" && !visible(sel) {
			t.Errorf("the %s page on a phone does not show %s", name, sel)
		}
	}
	if m := b.takeMessages(); len(m) > 0 {
		t.Errorf("the console raised messages:\n%s", strings.Join(m, "\n"))
	}

	// A reader's key: the same pages, no action. Its operator door's 401 is Chromium's only message.
	b.run(t, "signing out", chromedp.EmulateViewport(1280, 800), chromedp.Click(chromedp.CSS(`#sign-out`)))
	b.run(t, "a reader's key", chromedp.Navigate(base+"?code=reader-key#/groups/"+group), chromedp.WaitVisible(chromedp.CSS(`svg#timeline`)))
	b.waitText(t, "#role", 5*time.Second, func(s string) bool { return s == "reader" })
	if n := string(b.eval(t, `document.querySelectorAll('button[data-action]').length`)); n != "0" {
		t.Errorf("a reader sees %s action buttons", n)
	}
	b.screenshot(t, "group-reader-1280x800")
	allowOnly401s := func(when string) {
		for _, m := range b.takeMessages() {
			if !strings.Contains(m, "Failed to load resource: the server responded with a status of 401") {
				t.Errorf("%s, the console raised: %s", when, m)
			}
		}
	}
	allowOnly401s("with a reader's key")

	// A wrong key: a clear message; the only messages are Chromium's own lines for the two 401s.
	b.run(t, "signing out", chromedp.Click(chromedp.CSS(`#sign-out`)))
	b.run(t, "a wrong key", chromedp.Navigate(base), chromedp.WaitVisible(chromedp.CSS(`#key`)),
		chromedp.SendKeys(chromedp.CSS(`#key`), "not-a-key"), chromedp.Click(chromedp.CSS(`#key-submit`)))
	msg := b.waitText(t, "#key-error", 10*time.Second, func(s string) bool { return s != "" })
	if !strings.Contains(msg, "not accepted") || !strings.Contains(msg, "401") || strings.Contains(msg, "not-a-key") {
		t.Errorf("wrong-key message: %q", msg)
	}
	b.screenshot(t, "wrong-key-1280x800")
	allowOnly401s("with a wrong key")
}

// emulateMedia renders the page for a CSS media type (print: what a printout shows).
// blockAPI makes every API call fail (the stack down, as the page sees it), or lets them through again.
func blockAPI(block bool) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, _ *chromedp.Target) (chromedp.Void, error) {
		var patterns []*network.BlockPattern
		if block {
			patterns = []*network.BlockPattern{{URLPattern: "*://*:*/api/v1/*", Block: true}}
		}
		if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
			return chromedp.Void{}, err
		}
		_, err := chromedp.Call(ctx, network.SetBlockedURLs, network.SetBlockedURLsParams{URLPatterns: patterns})
		return chromedp.Void{}, err
	}
}

func emulateMedia(media string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, _ *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Media: media})
		return chromedp.Void{}, err
	}
}

// No console address the demo prints carries a key: a key in a URL stays in the browser's history and
// in every proxy's log, and the page asks for it anyway.
func TestDemoPrintsTheConsoleWithoutAKey(t *testing.T) {
	script, err := os.ReadFile(filepath.Join("..", "scripts", "demo.sh"))
	if err != nil {
		t.Fatal(err)
	}
	urls := 0
	for i, line := range strings.Split(string(script), "\n") {
		if strings.Contains(line, "/api/console") {
			urls++
			if strings.Contains(line, "code=") || strings.Contains(line, "$key") || strings.Contains(line, "${key") {
				t.Errorf("demo.sh:%d puts a key in the console's address: %s", i+1, line)
			}
		}
	}
	if urls == 0 {
		t.Fatal("demo.sh names no console address")
	}
}
