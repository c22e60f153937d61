package azsnapshots

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/standby-dr/standby/shared/testkit/fakearm"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/standby-dr/standby/shared/replication"
	"github.com/standby-dr/standby/shared/testkit/testenv"
)

// The agentless mode's calls, in the shapes the Compute provider and Blob storage document: the
// snapshot's PUT body passes the published type definitions, the diff goes to the newer snapshot's SAS
// with the older one's in x-ms-previous-snapshot-url, a clear range counts as a change, reads carry a
// Range, deletion revokes access first, and no signature reaches an error or the log.
func TestSnapshotsOnFakeARM(t *testing.T) {
	f := fakearm.New(t)
	s, err := NewSnapshots(fakearm.Sub, fakearm.Credential{}, f.Options())
	if err != nil {
		t.Fatal(err)
	}
	log, _ := fakearm.Logger(t) // its cleanup fails the test if a signature or token reached the log
	s.PollInterval, s.Transport, s.Log = time.Millisecond, f.Srv.Client(), log
	disk := fakearm.RGPath + "/providers/Microsoft.Compute/disks/db-data"
	snapPath := func(name string) string { return fakearm.RGPath + "/providers/Microsoft.Compute/snapshots/" + name }
	sasOf := func(name string) string {
		return f.Srv.URL + "/md/" + name + "/abcd?sv=2018-03-28&sr=b&" + fakearm.SASSig + "&sp=r"
	}
	// Disks_Get (DiskRP …/diskExamples/Disk_Get.json): location, properties.diskSizeBytes and, for an
	// OS disk, osType, hyperVGeneration and securityProfile.securityType.
	f.On("GET", disk, func(w http.ResponseWriter, r *http.Request) {
		fakearm.Reply(w, 200, map[string]any{"id": disk, "location": "westeurope", "properties": map[string]any{"diskSizeBytes": 8 << 20,
			"osType": "Linux", "hyperVGeneration": "V2", "securityProfile": map[string]any{"securityType": "TrustedLaunch"}}})
	})
	created := map[string]bool{}
	for _, name := range []string{"s1", "s2"} {
		name := name
		// Snapshots_Get: 404 ResourceNotFound until created; Snapshots_CreateOrUpdate: 202 with
		// Azure-AsyncOperation (Snapshot_Create_ByImportingAnUnmanagedBlobFromTheSameSubscription.json).
		f.On("GET", snapPath(name), func(w http.ResponseWriter, r *http.Request) {
			if !created[name] {
				fakearm.Reply(w, 404, fakearm.Err("ResourceNotFound", "The Resource 'Microsoft.Compute/snapshots/"+name+"' was not found."))
				return
			}
			fakearm.Reply(w, 200, map[string]any{"id": snapPath(name), "properties": map[string]any{"creationData": map[string]any{"createOption": "Copy", "sourceResourceId": disk}}})
		})
		op := f.AsyncOp("/ops/create-"+name, 1, map[string]any{"status": "Succeeded"})
		f.On("PUT", snapPath(name), func(w http.ResponseWriter, r *http.Request) {
			created[name] = true
			fakearm.Reply(w, 202, nil, "Azure-AsyncOperation", op, "Retry-After", "0")
		})
		grant := f.LocationOp("/ops/grant-"+name, 1, 200, map[string]any{"accessSAS": sasOf(name)})
		f.On("POST", snapPath(name)+"/beginGetAccess", func(w http.ResponseWriter, r *http.Request) {
			fakearm.Reply(w, 202, nil, "Location", grant, "Retry-After", "0")
		})
		revoke := f.LocationOp("/ops/revoke-"+name, 0, 200, nil)
		f.On("POST", snapPath(name)+"/endGetAccess", func(w http.ResponseWriter, r *http.Request) {
			fakearm.Reply(w, 202, nil, "Location", revoke, "Retry-After", "0")
		})
		f.On("DELETE", snapPath(name), func(w http.ResponseWriter, r *http.Request) { fakearm.Reply(w, 200, nil) })
		// The snapshot's blob behind its SAS: Get Page Ranges (XML PageList, End inclusive) and Get Blob.
		f.On("GET", "/md/"+name+"/abcd", func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Query().Get("comp") == "pagelist" {
				list := `<PageRange><Start>0</Start><End>1048575</End></PageRange>`
				if prev := r.Header.Get("x-ms-previous-snapshot-url"); prev != "" {
					if prev != sasOf("s1") || name != "s2" {
						fakearm.Reply(w, 400, nil)
						return
					}
					list = `<PageRange><Start>4096</Start><End>12287</End></PageRange><ClearRange><Start>12288</Start><End>16383</End></ClearRange>`
				}
				w.Header().Set("Content-Type", "application/xml")
				w.Header().Set("x-ms-blob-content-length", fmt.Sprint(8<<20))
				fmt.Fprintf(w, `<?xml version="1.0" encoding="utf-8"?><PageList>%s</PageList>`, list)
				return
			}
			if r.Header.Get("x-ms-range") != "bytes=4096-8191" && r.Header.Get("Range") != "bytes=4096-8191" {
				fakearm.Reply(w, 416, nil)
				return
			}
			w.Header().Set("Content-Range", fmt.Sprintf("bytes 4096-8191/%d", 8<<20))
			w.Header().Set("Content-Length", "4096")
			w.WriteHeader(206)
			w.Write([]byte(strings.Repeat("x", 4096)))
		})
	}
	ctx := context.Background()
	if info, err := s.DescribeDisk(ctx, disk); err != nil || info != (replication.DiskInfo{SizeBytes: 8 << 20, OSType: "Linux", HyperVGeneration: "V2", SecurityType: "TrustedLaunch"}) {
		t.Fatalf("disk %+v, %v", info, err)
	}
	s1, err := s.SnapshotDisk(ctx, disk, "s1")
	if err != nil || s1 != snapPath("s1") {
		t.Fatalf("snapshot: %q, %v", s1, err)
	}
	put, _ := f.Last("PUT", snapPath("s1"))
	var body map[string]any
	json.Unmarshal(put.Body, &body)
	body["name"] = "s1" // the definitions describe a template's resource; over REST the name is the URL's
	if errs := testenv.PublishedTypes(t).Check("Microsoft.Compute/snapshots", put.APIVersion, body); len(errs) > 0 {
		t.Fatalf("the snapshot's body fails the published types: %v\n%s", errs, put.Body)
	}
	if props, _ := body["properties"].(map[string]any); props["incremental"] != true || fmt.Sprint(props["creationData"]) != fmt.Sprint(map[string]any{"createOption": "Copy", "sourceResourceId": disk}) {
		t.Fatalf("not an incremental copy of the disk: %s", put.Body)
	}
	if again, err := s.SnapshotDisk(ctx, disk, "s1"); err != nil || again != s1 {
		t.Fatalf("retry: %q, %v", again, err)
	}
	if n := strings.Count(strings.Join(f.Called(), "\n"), "PUT "+snapPath("s1")); n != 1 {
		t.Fatalf("the retry took another snapshot (%d PUTs)", n)
	}
	s2, _ := s.SnapshotDisk(ctx, disk, "s2")
	if all, err := s.ChangedRanges(ctx, s1, ""); err != nil || fmt.Sprint(all) != "[{0 1048576}]" {
		t.Fatalf("allocated: %v, %v", all, err)
	}
	if diff, err := s.ChangedRanges(ctx, s2, s1); err != nil || fmt.Sprint(diff) != "[{4096 12288}]" {
		t.Fatalf("diff: %v, %v", diff, err)
	}
	if data, err := s.ReadSnapshot(ctx, s2, 4096, 4096); err != nil || string(data[:2]) != "xx" {
		t.Fatalf("read: %v", err)
	}
	if _, err := s.ReadSnapshot(ctx, s2, 0, 4096); err == nil || strings.Contains(err.Error(), "SECRETSIGNATURE") {
		t.Fatalf("a refused read: %v", err)
	}
	if err := s.DeleteSnapshot(ctx, s1); err != nil {
		t.Fatal(err)
	}
	calls := strings.Join(f.Called(), "\n")
	if !strings.Contains(calls, "POST "+snapPath("s1")+"/endGetAccess\nGET /ops/revoke-s1\nDELETE "+snapPath("s1")) {
		t.Fatalf("deletion did not revoke access first:\n%s", calls)
	}
	// What the agent's identity needs is what these calls took, no more and no less (the
	// operation-status polls are the caller's own; reads through a SAS take no role).
	used := map[string]bool{}
	for _, c := range f.Called() {
		if action := armAction(c); action != "" {
			used[action] = true
		}
	}
	for _, a := range RequiredActions {
		if !used[a] {
			t.Errorf("RequiredActions lists %s, which no call took", a)
		}
		delete(used, a)
	}
	for a := range used {
		t.Errorf("a call took %s, which RequiredActions (and the agent's role) lacks", a)
	}
	for _, bad := range []string{"/subscriptions/" + strings.Repeat("1", 8) + "-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Compute/disks/d", fakearm.RGPath + "/providers/Microsoft.Compute/disks/../x"} {
		if _, err := s.SnapshotDisk(ctx, bad, "s3"); !errors.Is(err, replication.ErrInvalid) {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

// TestSnapshotsOnAzure is the agentless mode's contract with the real Compute provider and Blob
// storage: two incremental snapshots of an existing managed disk, the first's allocated ranges, the diff
// between them (nothing wrote to the disk in between unless its VM did, so every range it lists must
// lie inside the disk), a read of each, and both deleted. It needs STANDBY_TEST_SNAPSHOT_DISK (a managed
// disk's resource id) and a DefaultAzureCredential identity with Disk Snapshot Contributor on its
// resource group and Reader on the disk.
func TestSnapshotsOnAzure(t *testing.T) {
	disk := os.Getenv("STANDBY_TEST_SNAPSHOT_DISK")
	if disk == "" {
		t.Skip("set STANDBY_TEST_SNAPSHOT_DISK (a managed disk's resource id; DefaultAzureCredential with Disk Snapshot Contributor on its group) to run the snapshot contract on Azure")
	}
	d, err := replication.ParseManagedDiskID(disk)
	if err != nil {
		t.Fatal(err)
	}
	cred, err := azidentity.NewDefaultAzureCredential(nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSnapshots(d.Subscription, cred, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	info, err := s.DescribeDisk(ctx, disk)
	if err != nil {
		t.Fatal(err)
	}
	size := info.SizeBytes
	var snaps []string
	t.Cleanup(func() {
		for _, id := range snaps {
			if err := s.DeleteSnapshot(context.Background(), id); err != nil {
				t.Errorf("deleting %s: %v", id, err)
			}
		}
	})
	for i := 0; i < 2; i++ {
		id, err := s.SnapshotDisk(ctx, disk, replication.TrackingSnapshotName("contract", d.Name, time.Now().UnixMilli()))
		if err != nil {
			t.Fatal(err)
		}
		snaps = append(snaps, id)
	}
	all, err := s.ChangedRanges(ctx, snaps[0], "")
	if err != nil {
		t.Fatal(err)
	}
	diff, err := s.ChangedRanges(ctx, snaps[1], snaps[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range append(all, diff...) {
		if r.Offset%replication.PageSize != 0 || r.Length%replication.PageSize != 0 || r.End() > size {
			t.Fatalf("range %v of a %d-byte disk", r, size)
		}
	}
	for _, id := range snaps {
		if data, err := s.ReadSnapshot(ctx, id, 0, 4096); err != nil || len(data) != 4096 {
			t.Fatalf("reading %s: %v", id, err)
		}
	}
	t.Logf("disk of %d bytes: %d allocated ranges, %d ranges changed between the two snapshots", size, len(all), len(diff))
}

// armAction is the RBAC action an ARM request takes ("" for operation-status polls and data-plane reads
// through a SAS): the provider path's resource type, and the verb of the method or the POST's action.
func armAction(call string) string {
	method, path, _ := strings.Cut(call, " ")
	_, provider, ok := strings.Cut(path, "/providers/")
	if !ok {
		return ""
	}
	parts := strings.Split(provider, "/") // Microsoft.Compute/snapshots/<name>[/<action>]
	if len(parts) < 3 {
		return ""
	}
	typ := parts[0] + "/" + parts[1]
	if len(parts) == 4 && method == "POST" {
		return typ + "/" + parts[3] + "/action"
	}
	switch method {
	case "GET", "HEAD":
		return typ + "/read"
	case "PUT", "PATCH":
		return typ + "/write"
	case "DELETE":
		return typ + "/delete"
	}
	return ""
}
