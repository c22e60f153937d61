package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/standby-dr/standby/functions/api"
	"github.com/standby-dr/standby/shared/api/apiv1"
	"github.com/standby-dr/standby/shared/protocol/vhd"
	"github.com/standby-dr/standby/shared/recovery"
	"github.com/standby-dr/standby/shared/replication"
	"github.com/standby-dr/standby/shared/standin/memstore"
)

func newTestAPI(t *testing.T) (*httptest.Server, *memstore.Pages, *memstore.State) {
	pages, state := memstore.NewPages(), memstore.NewState()
	a := newAPI(state, pages, memstore.NewJournal(), nil)
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	return srv, pages, state
}

// newAPI is the api function over in-memory stores (jobs: nil when the job queue is not configured).
func newAPI(state replication.StateStore, pages replication.PageStore, journal replication.JournalStore, jobs replication.JobSender) *api.API {
	log := slog.New(slog.DiscardHandler)
	deps := replication.Deps{State: state, Pages: pages, Journal: journal, Log: log, Now: time.Now}
	return &api.API{Groups: &replication.Groups{Deps: deps}, Agents: &replication.Agents{Deps: deps}, Points: &replication.Points{Deps: deps},
		Jobs: &recovery.Admission{State: state, Pages: pages, Jobs: jobs, Log: log, Now: time.Now}, Log: log, Now: time.Now}
}

func call(t *testing.T, srv *httptest.Server, method, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 400 && resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("%s %s: error %d without problem+json", method, path, resp.StatusCode)
	}
	return resp.StatusCode, string(data)
}

const goodSpec = `{"vms":[{"name":"web","disks":[{"name":"os","sizeBytes":1048576,"source":"agent"}]},
  {"name":"db","disks":[{"name":"os","sizeBytes":1048576,"source":"file:/dev/sdb"},{"name":"data","sizeBytes":2097152,"source":"pageblob:https://acct.blob.core.windows.net/disks/db-data"}]}]}`

func TestEnableReplication(t *testing.T) {
	srv, pages, _ := newTestAPI(t)
	status, body := call(t, srv, "PUT", "/api/v1/groups/shop", goodSpec)
	if status != 201 || !strings.Contains(body, `"state": "InitialReplication"`) || !strings.Contains(body, `"container": "shop-asr"`) {
		t.Fatalf("PUT: %d %s", status, body)
	}
	for _, d := range []string{"web/os.vhd", "db/os.vhd", "db/data.vhd"} {
		if _, err := pages.Size(context.Background(), replication.DiskRef{Container: "shop-asr", Name: d}); err != nil {
			t.Fatalf("target disk %s not created: %v", d, err)
		}
	}
	// Each replica is a fixed VHD: the source's size, then a footer that says so.
	data := replication.DiskRef{Container: "shop-asr", Name: "db/data.vhd"}
	if size, _ := pages.Size(context.Background(), data); size != 2<<20+512 {
		t.Fatalf("db/data target is %d bytes, want the source size and a VHD footer", size)
	}
	tail, _ := pages.ReadRange(context.Background(), data, "", 2<<20, 512)
	if f, err := vhd.Parse(tail); err != nil || f.CurrentSize != 2<<20 || f.DiskType != vhd.DiskTypeFixed {
		t.Fatalf("db/data target's footer: %+v, %v", f, err)
	}
	if status, _ := call(t, srv, "PUT", "/api/v1/groups/shop", goodSpec); status != 200 {
		t.Fatalf("re-PUT of the same spec: %d, want 200", status)
	}
	changed := strings.Replace(goodSpec, `"sizeBytes":2097152`, `"sizeBytes":4194304`, 1)
	status, body = call(t, srv, "PUT", "/api/v1/groups/shop", changed)
	if status != 409 || !strings.Contains(body, "vms[1].disks[1].sizeBytes: 2097152, requested 4194304") {
		t.Fatalf("conflicting PUT: %d %s", status, body)
	}
	status, body = call(t, srv, "GET", "/api/v1/groups", "")
	var list struct {
		Groups []apiv1.GroupView `json:"groups"`
	}
	json.Unmarshal([]byte(body), &list)
	if status != 200 || len(list.Groups) != 1 || list.Groups[0].Group != "shop" {
		t.Fatalf("list: %d %s", status, body)
	}
}

func TestInvalidGroupSpecsNameTheField(t *testing.T) {
	srv, _, state := newTestAPI(t)
	cases := []struct{ body, want string }{
		{`{"vms":[]}`, "vms: a group has 1 to 16 VMs, got 0"},
		{`{"vms":[{"name":"Web","disks":[{"name":"os","sizeBytes":1048576,"source":"agent"}]}]}`, `vms[0].name: \"Web\"`},
		{`{"vms":[{"name":"web","disks":[]}]}`, "vms[0].disks: a VM has 1 to 64 disks, got 0"},
		{`{"vms":[{"name":"web","disks":[{"name":"os","sizeBytes":1000,"source":"agent"}]}]}`, "vms[0].disks[0].sizeBytes: 1000 must be a positive whole number of MiB up to 8 TiB"},
		{`{"vms":[{"name":"web","disks":[{"name":"os","sizeBytes":1048064,"source":"agent"}]}]}`, "vms[0].disks[0].sizeBytes: 1048064 must be a positive whole number of MiB"},
		{`{"vms":[{"name":"web","disks":[{"name":"os","sizeBytes":8796093022208,"source":"agent"}]}]}`, "vms[0].disks[0].sizeBytes: 8796093022208"},
		{`{"vms":[{"name":"web","disks":[{"name":"os","sizeBytes":8796093022720,"source":"agent"}]}]}`, "vms[0].disks[0].sizeBytes: 8796093022720"},
		{`{"vms":[{"name":"web","disks":[{"name":"os","sizeBytes":1048576,"source":"ftp://x"}]}]}`, `vms[0].disks[0].source: \"ftp://x\", want nbd:<path> (every write captured through the agent's NBD export), agent, managed:<disk resource id> (agentless, from incremental snapshots: consistent per disk only), file:<path> (scanned: not crash-consistent) or pageblob:<url>`},
		{`{"vms":[{"name":"web","disks":[{"name":"os","sizeBytes":1048576,"source":"agent"},{"name":"os","sizeBytes":1048576,"source":"agent"}]}]}`, `vms[0].disks[1].name: \"os\" appears twice`},
		{`{"vms":[{"name":"web","disks":[{"name":"os","sizeBytes":1048576,"source":"agent"}]}],"policy":{"crashConsistentIntervalSeconds":10}}`, "policy.crashConsistentIntervalSeconds: 10 is outside 30..86400 (a day)"},
		{`{"vms":[{"name":"web","disks":[{"name":"os","sizeBytes":1048576,"source":"agent"}]}],"policy":{"appConsistentIntervalSeconds":60}}`, "policy.appConsistentIntervalSeconds: 60, want 0 (off) or 900..604800 (a week)"},
		{`{"vms":[{"name":"web","disks":[{"name":"os","sizeBytes":1048576,"source":"agent"}]}],"policy":{"retentionHours":400}}`, "policy.retentionHours: 400 is outside 0..360"},
		{`{"vms":[{"name":"web","disks":[{"name":"os","sizeBytes":1048576,"source":"agent"}]}],"target":{"container":"A_B"}}`, `target.container: \"A_B\"`},
		{`{"vms":[{"name":"web","disks":[{"name":"os","sizeBytes":1048576,"source":"agent"}]}],"policy":{"rpoWarningMinutes":40}}`, "policy.rpoCriticalMinutes: 30 must exceed rpoWarningMinutes 40"},
		{`{"vms":[{"name":"web","disks":[{"name":"os","sizeBytes":"big","source":"agent"}]}]}`, "body is not valid JSON of the expected shape"},
		{`{"vms":[],"color":"red"}`, `unknown field \"color\"`},
		{`{"vms":[{"name":"web","subnet":"v/s","disks":[{"name":"os","sizeBytes":1048576,"source":"agent"}]}]}`, `vms[0].subnet: \"v/s\" has no network mapping`},
	}
	for _, c := range cases {
		status, body := call(t, srv, "PUT", "/api/v1/groups/g1", c.body)
		if status != 400 || !strings.Contains(body, c.want) {
			t.Errorf("PUT %s: %d %s, want 400 with %q", c.body, status, body, c.want)
		}
	}
	if status, body := call(t, srv, "PUT", "/api/v1/groups/Bad_Name", goodSpec); status != 400 || !strings.Contains(body, "invalid group name") {
		t.Errorf("bad group name: %d %s", status, body)
	}
	// Nothing was created by the refused requests.
	if groups, err := replication.GroupNames(context.Background(), state); err != nil || len(groups) != 0 {
		t.Fatalf("refused PUTs created groups %v (%v)", groups, err)
	}
}

func TestNetworkMappingInTheGroup(t *testing.T) {
	srv, _, _ := newTestAPI(t)
	spec := `{"vms":[{"name":"web","subnet":"prod/app","staticIP":"10.0.0.5","zone":"1","disks":[{"name":"os","sizeBytes":1048576,"source":"agent"}]}],
	  "network":{"mappings":[{"source":"prod/app","target":"dr/app","test":"drtest/app"}]}}`
	if status, body := call(t, srv, "PUT", "/api/v1/groups/net", spec); status != 201 {
		t.Fatalf("PUT: %d %s", status, body)
	}
	_, body := call(t, srv, "GET", "/api/v1/groups/net", "")
	for _, want := range []string{`"staticIP": "10.0.0.5"`, `"zone": "1"`, `"target": "dr/app"`, `"test": "drtest/app"`} {
		if !strings.Contains(body, want) {
			t.Fatalf("GET lacks %s: %s", want, body)
		}
	}
	// Placement changes in place (replication never reads it); anything else with it is a conflict.
	changed := strings.Replace(strings.Replace(spec, `"test":"drtest/app"`, `"test":"other/app"`, 1), `"zone":"1"`, `"availabilitySet":"web-set"`, 1)
	if status, body := call(t, srv, "PUT", "/api/v1/groups/net", changed); status != 200 ||
		!strings.Contains(body, `"test": "other/app"`) || !strings.Contains(body, `"availabilitySet": "web-set"`) || strings.Contains(body, `"zone"`) {
		t.Fatalf("a changed mapping: %d %s", status, body)
	}
	if _, body := call(t, srv, "GET", "/api/v1/groups/net", ""); !strings.Contains(body, `"test": "other/app"`) || !strings.Contains(body, `"availabilitySet": "web-set"`) {
		t.Fatalf("GET after the change: %s", body)
	}
	both := strings.Replace(changed, `"sizeBytes":1048576`, `"sizeBytes":2097152`, 1)
	if status, body := call(t, srv, "PUT", "/api/v1/groups/net", both); status != 409 || !strings.Contains(body, "vms[0].disks[0].sizeBytes: 1048576, requested 2097152") {
		t.Fatalf("a placement change with a disk change: %d %s", status, body)
	}
	bad := strings.Replace(changed, `"test":"other/app"`, `"test":"dr/app"`, 1)
	if status, body := call(t, srv, "PUT", "/api/v1/groups/net", bad); status != 400 || !strings.Contains(body, "is the production subnet") {
		t.Fatalf("an invalid mapping: %d %s", status, body)
	}
}

func TestDisableAndAgentReports(t *testing.T) {
	srv, pages, _ := newTestAPI(t)
	call(t, srv, "PUT", "/api/v1/groups/shop", goodSpec)
	status, body := call(t, srv, "POST", "/api/v1/groups/shop/agent", `{"seq":12,"baselineDoneBytes":1048576,"baselineTotalBytes":4194304,"baselineRateBytesPerSecond":1048576}`)
	if status != 200 || !strings.Contains(body, `"resync": false`) {
		t.Fatalf("agent report: %d %s", status, body)
	}
	_, body = call(t, srv, "GET", "/api/v1/groups/shop", "")
	if !strings.Contains(body, `"pendingBatches": 12`) || !strings.Contains(body, `"percent": 25`) || !strings.Contains(body, `"etaSeconds": 3`) {
		t.Fatalf("group view after the report: %s", body)
	}
	if status, body := call(t, srv, "POST", "/api/v1/groups/shop/agent", `{"seq":-1}`); status != 400 || !strings.Contains(body, "invalid agent report") {
		t.Fatalf("bad report: %d %s", status, body)
	}
	if status, _ := call(t, srv, "POST", "/api/v1/groups/shop/resync", ""); status != 202 {
		t.Fatalf("resync: %d", status)
	}
	if _, body := call(t, srv, "POST", "/api/v1/groups/shop/agent", `{"seq":13}`); !strings.Contains(body, `"resync": true`) {
		t.Fatalf("the agent is not told to resync: %s", body)
	}
	status, body = call(t, srv, "GET", "/api/v1/groups/shop/disks/web/os/hashes", "")
	if status != 200 || !strings.Contains(body, `"blockSize": 1048576`) || !strings.Contains(body, `"hashes": [`) {
		t.Fatalf("hashes: %d %s", status, body)
	}
	if status, _ := call(t, srv, "DELETE", "/api/v1/groups/shop?keepData=maybe", ""); status != 400 {
		t.Fatalf("bad keepData: %d", status)
	}
	if status, body := call(t, srv, "DELETE", "/api/v1/groups/shop", ""); status != 200 || !strings.Contains(body, `"state": "Disabled"`) {
		t.Fatalf("disable keeping data: %d %s", status, body)
	}
	if _, err := pages.Size(context.Background(), replication.DiskRef{Container: "shop-asr", Name: "web/os.vhd"}); err != nil {
		t.Fatal("keepData=true removed a disk")
	}
	if status, _ := call(t, srv, "DELETE", "/api/v1/groups/shop?keepData=false", ""); status != 204 {
		t.Fatalf("disable removing data: %d", status)
	}
	if _, err := pages.Size(context.Background(), replication.DiskRef{Container: "shop-asr", Name: "web/os.vhd"}); err == nil {
		t.Fatal("keepData=false kept the disks")
	}
	if status, _ := call(t, srv, "GET", "/api/v1/groups/shop", ""); status != 404 {
		t.Fatalf("GET after removal: %d", status)
	}
}

func TestRecoveryPointsListing(t *testing.T) {
	pages, state, journal := memstore.NewPages(), memstore.NewState(), memstore.NewJournal()
	a := newAPI(state, pages, journal, nil)
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	ctx := context.Background()
	call(t, srv, "PUT", "/api/v1/groups/shop", goodSpec)
	base := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	for seq := int64(1); seq <= 5; seq++ {
		kind := "crash"
		if seq == 3 {
			kind = "app"
		}
		state.Upsert(ctx, replication.PointsTable, replication.RecoveryPoint{
			Keys: replication.Keys{PartitionKey: "shop", RowKey: fmt.Sprintf("%020d", math.MaxInt64-seq*10)},
			ID:   replication.PointID(seq * 10), Kind: kind, Seq: seq * 10, SourceTime: base.Add(time.Duration(seq) * time.Minute),
			Snapshots: map[string]string{"web/os": "s"}, Sizes: map[string]int64{"web/os": 1 << 20}})
	}
	replication.UpdateGroup(ctx, state, "shop", replication.AllRows, func(r *replication.GroupRecord) error {
		r.Watermark, r.LastSourceTime = 52, base.Add(6*time.Minute)
		return nil
	})
	for seq := int64(11); seq <= 52; seq++ {
		journal.Put(ctx, "shop", seq, []byte("x"))
	}
	var page apiv1.PointsPage
	_, body := call(t, srv, "GET", "/api/v1/groups/shop/recovery-points?limit=2", "")
	json.Unmarshal([]byte(body), &page)
	if len(page.Points) != 2 || page.Points[0].ID != "rp-50" || page.Points[1].ID != "rp-40" || page.Next != "40" ||
		!page.Window.JournalCovers || !page.Window.From.Equal(base.Add(time.Minute)) || len(page.Points[0].Disks) != 3 {
		t.Fatalf("first page: %s", body)
	}
	_, body = call(t, srv, "GET", "/api/v1/groups/shop/recovery-points?limit=2&after=40", "")
	json.Unmarshal([]byte(body), &page)
	if len(page.Points) != 2 || page.Points[0].ID != "rp-30" || page.Next != "20" {
		t.Fatalf("second page: %s", body)
	}
	_, body = call(t, srv, "GET", "/api/v1/groups/shop/recovery-points?kind=app", "")
	json.Unmarshal([]byte(body), &page)
	if len(page.Points) != 1 || page.Points[0].ID != "rp-30" {
		t.Fatalf("app points: %s", body)
	}
	_, body = call(t, srv, "GET", "/api/v1/groups/shop/recovery-points?from=2026-11-26T10:02:00Z&to=2026-11-26T10:04:00Z", "")
	json.Unmarshal([]byte(body), &page)
	if len(page.Points) != 3 || page.Points[0].ID != "rp-40" || page.Points[2].ID != "rp-20" {
		t.Fatalf("time filter: %s", body)
	}
	_, body = call(t, srv, "GET", "/api/v1/groups/shop", "")
	if !strings.Contains(body, `"retentionWindow": {`) || !strings.Contains(body, `"points": 5`) || !strings.Contains(body, `"oldestPoint": "2026-11-26T10:01:00Z"`) {
		t.Fatalf("group view retention: %s", body)
	}
	journal.Delete(ctx, "shop", 33)
	_, body = call(t, srv, "GET", "/api/v1/groups/shop/recovery-points", "")
	json.Unmarshal([]byte(body), &page)
	if page.Window.JournalCovers || !strings.Contains(page.Window.Reason, "batch 33 has left the journal") {
		t.Fatalf("window with a pruned batch: %s", body)
	}
	for q, want := range map[string]string{"kind=fuzzy": `kind=\"fuzzy\", want crash or app`, "from=yesterday": `from=\"yesterday\" is not an RFC 3339 time`,
		"limit=0": `limit=\"0\", want 1 to 1000`, "after=x": `after=\"x\" is not a continuation`} {
		if status, body := call(t, srv, "GET", "/api/v1/groups/shop/recovery-points?"+q, ""); status != 400 || !strings.Contains(body, want) {
			t.Errorf("?%s: %d %s", q, status, body)
		}
	}
}

func TestEnableIntoExistingTargetDisks(t *testing.T) {
	srv, pages, _ := newTestAPI(t)
	ctx := context.Background()
	spec := `{"vms":[{"name":"web","disks":[{"name":"os","sizeBytes":1048576,"source":"agent"}]}],"target":{"disks":{"web/os":"orig/web-os"}}}`
	status, body := call(t, srv, "PUT", "/api/v1/groups/back", spec)
	if status != 409 || !strings.Contains(body, "target.disks[web/os]: orig/web-os does not exist") {
		t.Fatalf("PUT onto a missing disk: %d %s", status, body)
	}
	orig := replication.DiskRef{Container: "orig", Name: "web-os"}
	pages.EnsureContainer(ctx, "orig")
	pages.Create(ctx, orig, 2<<20)
	status, body = call(t, srv, "PUT", "/api/v1/groups/back", spec)
	if status != 409 || !strings.Contains(body, "target.disks[web/os]: orig/web-os has 2097152 bytes, a fixed VHD of the disk's 1048576 bytes has 1049088") {
		t.Fatalf("PUT onto a disk of another size: %d %s", status, body)
	}
	pages.Delete(ctx, orig)
	pages.Create(ctx, orig, 1<<20+512) // the right size, but a raw image: no VHD footer
	status, body = call(t, srv, "PUT", "/api/v1/groups/back", spec)
	if status != 409 || !strings.Contains(body, "target.disks[web/os]: orig/web-os has no fixed VHD footer after its 1048576 bytes") {
		t.Fatalf("PUT onto a disk without a VHD footer: %d %s", status, body)
	}
	pages.Delete(ctx, orig)
	replication.CreateFixedVHD(ctx, pages, orig, 1<<20, time.Now())
	pages.WritePages(ctx, orig, 0, []byte(strings.Repeat("x", 512)))
	if status, body = call(t, srv, "PUT", "/api/v1/groups/back", spec); status != 201 || !strings.Contains(body, `"web/os": "orig/web-os"`) {
		t.Fatalf("PUT onto the original disk: %d %s", status, body)
	}
	if got, _ := pages.ReadRange(ctx, orig, "", 0, 512); string(got) != strings.Repeat("x", 512) {
		t.Fatal("enabling replication into an existing disk changed it")
	}
	if _, err := pages.Size(ctx, replication.DiskRef{Container: "back-asr", Name: "web/os.vhd"}); err == nil {
		t.Fatal("a new target disk was created besides the existing one")
	}
}

func TestTheWayBackAndIdempotentFailoverRequests(t *testing.T) {
	pages, state, q := memstore.NewPages(), memstore.NewState(), memstore.NewQueue(memstore.QueueOptions{})
	a := newAPI(state, pages, nil, q)
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	if status, body := call(t, srv, "PUT", "/api/v1/groups/shop", goodSpec); status != 201 {
		t.Fatalf("PUT: %d %s", status, body)
	}
	status, body := call(t, srv, "POST", "/api/v1/groups/shop/reprotect", "")
	if status != 503 || !strings.Contains(body, "set StandbyPeerApi") {
		t.Fatalf("reprotect without a peer: %d %s", status, body)
	}
	a.Jobs.PeerConfigured = true
	for path, want := range map[string]string{
		"reprotect": "reprotect needs a committed failover; the group is InitialReplication",
		"failback":  "failback needs a Reprotected group (replicating back); it is InitialReplication",
	} {
		if status, body := call(t, srv, "POST", "/api/v1/groups/shop/"+path, ""); status != 409 || !strings.Contains(body, want) {
			t.Fatalf("%s: %d %s", path, status, body)
		}
	}
	replication.UpdateGroup(context.Background(), state, "shop", replication.AllRows, func(r *replication.GroupRecord) error {
		r.State = replication.StateReprotected
		return nil
	})
	status, body = call(t, srv, "POST", "/api/v1/groups/shop/failback", "")
	if status != 202 {
		t.Fatalf("failback: %d %s", status, body)
	}
	var first apiv1.JobView
	json.Unmarshal([]byte(body), &first)
	status, body = call(t, srv, "POST", "/api/v1/groups/shop/failback", "")
	if status != 409 || !strings.Contains(body, "failback job "+first.ID+" is Queued") {
		t.Fatalf("a second failback while the first is queued: %d %s", status, body)
	}
	sent := len(q.Pending())
	replication.UpdateGroup(context.Background(), state, "shop", replication.AllRows, func(r *replication.GroupRecord) error {
		r.State, r.LastPointTime = replication.StateProtected, time.Now()
		return nil
	})
	id := strings.Repeat("ab", 16)
	req := `{"type":"test","jobId":"` + id + `"}`
	for i := 0; i < 2; i++ { // the same request twice: one job, answered twice
		if status, body := call(t, srv, "POST", "/api/v1/groups/shop/failover", req); status != 202 || !strings.Contains(body, `"id": "`+id+`"`) {
			t.Fatalf("request %d: %d %s", i, status, body)
		}
	}
	if n := len(q.Pending()) - sent; n != 1 {
		t.Fatalf("%d job messages sent, want 1", n)
	}
	status, body = call(t, srv, "POST", "/api/v1/groups/shop/failover", `{"type":"unplanned","jobId":"`+id+`"}`)
	if status != 409 || !strings.Contains(body, "job "+id+" is a test job of group shop") {
		t.Fatalf("another request with the id: %d %s", status, body)
	}
	noTest := `{"vms":[{"name":"web","subnet":"dr/app","disks":[{"name":"os","sizeBytes":1048576,"source":"agent"}]}],
	  "network":{"mappings":[{"source":"dr/app","target":"prod/app"}]}}`
	if status, body := call(t, srv, "PUT", "/api/v1/groups/back", noTest); status != 201 {
		t.Fatalf("PUT a mapping without a test subnet: %d %s", status, body)
	}
	status, body = call(t, srv, "POST", "/api/v1/groups/back/failover", `{"type":"test"}`)
	if status != 409 || !strings.Contains(body, "the network mapping of dr/app names no isolated test subnet: a test failover cannot place web") {
		t.Fatalf("a drill without a test subnet: %d %s", status, body)
	}
	status, body = call(t, srv, "POST", "/api/v1/groups/shop/failover", `{"type":"test","jobId":"XYZ"}`)
	if status != 400 || !strings.Contains(body, `jobId \"XYZ\" is not 32 lowercase hex digits`) {
		t.Fatalf("a bad job id: %d %s", status, body)
	}
	// The jobs, newest first: all of them, or a group's; the reader's door has them too.
	var list apiv1.JobList
	status, body = call(t, srv, "GET", "/api/read/v1/jobs?group=shop&limit=1", "")
	if json.Unmarshal([]byte(body), &list); status != 200 || len(list.Jobs) != 1 || list.Jobs[0].ID != id {
		t.Fatalf("the shop's newest job: %d %s", status, body)
	}
	status, body = call(t, srv, "GET", "/api/v1/jobs", "")
	if json.Unmarshal([]byte(body), &list); status != 200 || len(list.Jobs) != 2 || list.Jobs[1].ID != first.ID {
		t.Fatalf("every job: %d %s", status, body)
	}
	for query, want := range map[string]string{"limit=0": "limit 0: want 1 to 200", "limit=x": `limit=\"x\" is not a whole number`,
		"group=Bad_Name": `group \"Bad_Name\" must be`} {
		if status, body := call(t, srv, "GET", "/api/v1/jobs?"+query, ""); status != 400 || !strings.Contains(body, want) {
			t.Errorf("GET /jobs?%s: %d %s", query, status, body)
		}
	}
}

// The RPO history the timer samples is served a range at a time (and its answers pass the contract
// check, as every answer here does); a malformed time or an unknown group is refused.
func TestRPOHistory(t *testing.T) {
	srv, _, state := newTestAPI(t)
	if status, body := call(t, srv, "PUT", "/api/v1/groups/g1", goodSpec); status != 201 {
		t.Fatalf("PUT: %d %s", status, body)
	}
	svc := &replication.Upkeep{Deps: replication.Deps{State: state, Log: slog.New(slog.DiscardHandler), Now: time.Now}}
	if _, err := svc.Run(context.Background(), replication.TimerRun{}); err != nil {
		t.Fatal(err)
	}
	status, body := call(t, srv, "GET", "/api/v1/groups/g1/rpo-history?from="+time.Now().Add(-time.Hour).UTC().Format(time.RFC3339), "")
	var v apiv1.RPOHistoryView
	if json.Unmarshal([]byte(body), &v); status != 200 || len(v.Samples) != 1 || v.Samples[0].Health == "" {
		t.Fatalf("history: %d %s", status, body)
	}
	if status, _ := call(t, srv, "GET", "/api/v1/groups/g1/rpo-history?to=yesterday", ""); status != 400 {
		t.Errorf("a malformed time: %d", status)
	}
	if status, _ := call(t, srv, "GET", "/api/v1/groups/nope/rpo-history", ""); status != 404 {
		t.Errorf("an unknown group: %d", status)
	}
}
