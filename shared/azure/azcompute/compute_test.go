package azcompute

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/standby-dr/standby/shared/azure/azarm"
	"github.com/standby-dr/standby/shared/testkit/fakearm"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/standby-dr/standby/shared/replication"
)

func TestEnsureResourceGroup(t *testing.T) {
	f, c, _ := newFake(t)
	// CheckExistence answers 204 or 404, CreateOrUpdate 201 with the group (Microsoft.Resources
	// stable/2021-04-01/examples/CheckExistenceResourceGroups.json and CreateResourceGroup.json).
	f.On("HEAD", "/subscriptions/"+fakearm.Sub+"/resourcegroups/there", func(w http.ResponseWriter, r *http.Request) { fakearm.Reply(w, 204, nil) })
	f.On("HEAD", "/subscriptions/"+fakearm.Sub+"/resourcegroups/new-asr", func(w http.ResponseWriter, r *http.Request) { fakearm.Reply(w, 404, nil) })
	f.On("PUT", "/subscriptions/"+fakearm.Sub+"/resourcegroups/new-asr", func(w http.ResponseWriter, r *http.Request) {
		fakearm.Reply(w, 201, map[string]any{"id": "/subscriptions/" + fakearm.Sub + "/resourceGroups/new-asr", "name": "new-asr", "location": "westeurope",
			"properties": map[string]any{"provisioningState": "Succeeded"}})
	})
	ctx := context.Background()
	id, err := c.EnsureResourceGroup(ctx, "there")
	if err != nil || id != "/subscriptions/"+fakearm.Sub+"/resourceGroups/there" {
		t.Fatalf("existing: %q, %v", id, err)
	}
	if _, put := f.Last("PUT", "/subscriptions/"+fakearm.Sub+"/resourcegroups/there"); put {
		t.Error("an existing group was written")
	}
	if id, err = c.EnsureResourceGroup(ctx, "new-asr"); err != nil || id != "/subscriptions/"+fakearm.Sub+"/resourceGroups/new-asr" {
		t.Fatalf("created: %q, %v", id, err)
	}
	put, _ := f.Last("PUT", "/subscriptions/"+fakearm.Sub+"/resourcegroups/new-asr")
	if string(put.Body) != `{"location":"westeurope"}` {
		t.Errorf("PUT body %s", put.Body)
	}
	n := len(f.Called())
	if _, err := c.EnsureResourceGroup(ctx, "bad name."); !errors.Is(err, replication.ErrInvalid) || len(f.Called()) != n {
		t.Errorf("bad name: %v", err)
	}
}

// vmBody is a VM with its instance view (GET ?$expand=instanceView): the VM resource with
// properties.instanceView shaped as ComputeRP stable/2025-04-01/examples/virtualMachineExamples/
// VirtualMachine_Get_InstanceView.json.
func vmBody(name, power string, agent map[string]any) map[string]any {
	view := map[string]any{"computerName": name, "statuses": []any{
		map[string]any{"code": "ProvisioningState/succeeded", "level": "Info", "displayStatus": "Provisioning succeeded", "time": "2019-10-14T21:30:12.8051917+00:00"},
		map[string]any{"code": "PowerState/" + power, "level": "Info", "displayStatus": "VM " + power}}}
	if agent != nil {
		view["vmAgent"] = map[string]any{"vmAgentVersion": "2.7.41491.949", "statuses": []any{agent}}
	}
	return map[string]any{"id": rgPath + "/providers/Microsoft.Compute/virtualMachines/" + name, "name": name,
		"type": "Microsoft.Compute/virtualMachines", "location": "westeurope", "properties": map[string]any{"provisioningState": "Succeeded", "instanceView": view}}
}

var (
	agentReady    = map[string]any{"code": "ProvisioningState/succeeded", "level": "Info", "displayStatus": "Ready", "message": "GuestAgent is running and accepting new configurations."}
	agentNotReady = map[string]any{"code": "ProvisioningState/Unavailable", "level": "Warning", "displayStatus": "Not Ready", "message": "VM status blob is found but not yet populated."}
)

func vmPath(name string) string {
	return rgPath + "/providers/Microsoft.Compute/virtualMachines/" + name
}

func TestVM(t *testing.T) {
	f, c, _ := newFake(t)
	serial := "[    0.000000] Linux version 6.1\n[    1.234567] EXT4-fs (sda1): mounted\n\x1b[0mwaiting for agent\n"
	f.On("GET", "/bootdiag/web2.serialconsole.log", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("sig") != "SECRETSIGNATURE123" || r.Header.Get("Authorization") != "" {
			t.Errorf("serial log read with query %q, Authorization %q: want its SAS and no ARM token", r.URL.RawQuery, r.Header.Get("Authorization"))
		}
		if r.Header.Get("Range") != fmt.Sprintf("bytes=0-%d", len(serial)-1) {
			t.Errorf("range %q", r.Header.Get("Range"))
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(serial)))
		w.WriteHeader(http.StatusPartialContent)
		w.Write([]byte(serial))
	})
	f.On("HEAD", "/bootdiag/web2.serialconsole.log", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(len(serial)))
	})
	for name, body := range map[string]map[string]any{
		"web1": vmBody("web1", "running", agentReady),
		"web2": vmBody("web2", "running", agentNotReady),
		"web3": vmBody("web3", "starting", nil),
		"web4": vmBody("web4", "deallocated", nil),
		"web5": vmBody("web5", "stopped", agentReady),
	} {
		f.On("GET", vmPath(name), func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Query().Get("$expand") != "instanceView" || r.URL.Query().Get("api-version") != "2025-04-01" {
				t.Errorf("VM read with %q", r.URL.RawQuery)
			}
			fakearm.Reply(w, 200, body)
		})
	}
	// retrieveBootDiagnosticsData answers the SAS URLs (VirtualMachine_RetrieveBootDiagnosticsData.json);
	// a VM without boot diagnostics is refused (409 OperationNotAllowed).
	f.On("POST", vmPath("web2")+"/retrieveBootDiagnosticsData", func(w http.ResponseWriter, r *http.Request) {
		fakearm.Reply(w, 200, map[string]any{"consoleScreenshotBlobUri": f.Srv.URL + "/bootdiag/web2.screenshot.bmp?sv=2021-08-06&" + fakearm.SASSig,
			"serialConsoleLogBlobUri": f.Srv.URL + "/bootdiag/web2.serialconsole.log?sv=2021-08-06&sr=b&sp=r&" + fakearm.SASSig})
	})
	for _, vm := range []string{"web3", "web4", "web5"} {
		f.On("POST", vmPath(vm)+"/retrieveBootDiagnosticsData", func(w http.ResponseWriter, r *http.Request) {
			fakearm.Reply(w, 409, fakearm.Err("OperationNotAllowed", "Boot diagnostics is not enabled for this VM."))
		})
	}
	f.On("GET", vmPath("gone"), notFound("ResourceNotFound", "The Resource 'Microsoft.Compute/virtualMachines/gone' under resource group 'rg1' was not found."))
	ctx := context.Background()
	for _, tc := range []struct {
		vm, power string
		healthy   bool
		detail    string
	}{
		{"web1", "running", true, ""},
		{"web2", "running", false, "serial console: [    0.000000] Linux version 6.1\n[    1.234567] EXT4-fs (sda1): mounted\n[0mwaiting for agent"},
		{"web3", "starting", false, "ProvisioningState/succeeded (Provisioning succeeded); PowerState/starting (VM starting); VM agent: no status"},
		{"web4", "stopped", false, "PowerState/deallocated (VM deallocated)"},
		{"web5", "stopped", false, "VM agent: ProvisioningState/succeeded (Ready)"},
	} {
		st, err := c.VM(ctx, "rg1", tc.vm)
		if err != nil || st.PowerState != tc.power || st.Healthy != tc.healthy || !strings.Contains(st.Detail, tc.detail) || st.ID != vmPath(tc.vm) {
			t.Errorf("%s: %+v, %v; want %s healthy=%v detail containing %q", tc.vm, st, err, tc.power, tc.healthy, tc.detail)
		}
		if strings.Contains(st.Detail, "SECRET") {
			t.Errorf("%s: detail holds the SAS: %q", tc.vm, st.Detail)
		}
	}
	if _, err := c.VM(ctx, "rg1", "gone"); !errors.Is(err, replication.ErrNotFound) {
		t.Errorf("missing VM: %v", err)
	}
}

func TestSerialTailKeepsTheEndAndWholeLines(t *testing.T) {
	f, c, _ := newFake(t)
	log := strings.Repeat("early boot line\n", 400) + "last words\n"
	f.On("HEAD", "/bootdiag/big.log", func(w http.ResponseWriter, r *http.Request) { w.Header().Set("Content-Length", fmt.Sprint(len(log))) })
	f.On("GET", "/bootdiag/big.log", func(w http.ResponseWriter, r *http.Request) {
		var from, to int
		fmt.Sscanf(r.Header.Get("Range"), "bytes=%d-%d", &from, &to)
		w.WriteHeader(http.StatusPartialContent)
		w.Write([]byte(log[from : to+1]))
	})
	tail, err := c.readTail(context.Background(), f.Srv.URL+"/bootdiag/big.log?"+fakearm.SASSig, 100)
	if err != nil || !strings.HasPrefix(tail, "early boot line\n") || !strings.HasSuffix(tail, "last words") || len(tail) > 100 {
		t.Errorf("tail %q, %v", tail, err)
	}
	// Unreachable: the error names the cause, never the address with its signature.
	_, err = c.readTail(context.Background(), "https://127.0.0.1:1/x.log?sv=1&"+fakearm.SASSig, 100)
	if err == nil || strings.Contains(err.Error(), "SECRET") || strings.Contains(err.Error(), "127.0.0.1:1/x.log") {
		t.Errorf("unreachable: %v", err)
	}
}

func TestExists(t *testing.T) {
	f, c, _ := newFake(t)
	nic := rgPath + "/providers/Microsoft.Network/networkInterfaces/web-nic"
	subnet := rgPath + "/providers/Microsoft.Network/virtualNetworks/vnet/subnets/default"
	disk := rgPath + "/providers/Microsoft.Compute/disks/web-os"
	avset := rgPath + "/providers/Microsoft.Compute/availabilitySets/set1"
	wantAPI := map[string]string{vmPath("web"): "2025-04-01", nic: "2024-05-01", subnet: "2024-05-01", disk: "2025-01-02", avset: "2025-04-01"}
	for id, api := range wantAPI {
		f.On("GET", id, func(w http.ResponseWriter, r *http.Request) {
			if got := r.URL.Query().Get("api-version"); got != api {
				t.Errorf("%s read with api-version %s, want %s", id, got, api)
			}
			if strings.Contains(id, "disks") {
				fakearm.Reply(w, 404, fakearm.Err("ResourceNotFound", "The Resource 'Microsoft.Compute/disks/web-os' under resource group 'rg1' was not found."))
				return
			}
			fakearm.Reply(w, 200, map[string]any{"id": id, "name": "x"})
		})
	}
	f.On("HEAD", "/subscriptions/"+fakearm.Sub+"/resourcegroups/rg1", func(w http.ResponseWriter, r *http.Request) { fakearm.Reply(w, 204, nil) })
	f.On("HEAD", "/subscriptions/"+fakearm.Sub+"/resourcegroups/rg2", func(w http.ResponseWriter, r *http.Request) { fakearm.Reply(w, 404, nil) })
	f.On("GET", rgPath+"/providers/Microsoft.Compute/virtualMachines/forbidden", func(w http.ResponseWriter, r *http.Request) {
		fakearm.Reply(w, 403, fakearm.Err("AuthorizationFailed", "The client 'x' does not have authorization to perform action 'Microsoft.Compute/virtualMachines/read'."))
	})
	ctx := context.Background()
	for id, want := range map[string]bool{vmPath("web"): true, nic: true, subnet: true, disk: false, avset: true,
		"/subscriptions/" + fakearm.Sub + "/resourceGroups/rg1": true, "/subscriptions/" + fakearm.Sub + "/resourceGroups/rg2": false} {
		if got, err := c.Exists(ctx, id); err != nil || got != want {
			t.Errorf("%s: %v, %v; want %v", id, got, err, want)
		}
	}
	if _, err := c.Exists(ctx, vmPath("forbidden")); err == nil || !strings.Contains(err.Error(), "AuthorizationFailed") || strings.Contains(err.Error(), fakearm.Token) {
		t.Errorf("forbidden: %v", err)
	}
	for _, bad := range []string{"web", "/subscriptions/x", rgPath + "/providers/Microsoft.Compute/virtualMachines", rgPath + "/providers/Microsoft.Sql/servers/s"} {
		if _, err := c.Exists(ctx, bad); !errors.Is(err, replication.ErrInvalid) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// Deletes go in waves — VMs, NICs, disks, availability sets — each wave awaited before the next, the
// deletes of one wave in parallel.
func TestDeleteInDependencyWaves(t *testing.T) {
	f, c, _ := newFake(t)
	nic := rgPath + "/providers/Microsoft.Network/networkInterfaces/web-nic"
	disk := rgPath + "/providers/Microsoft.Compute/disks/web-os"
	gone := rgPath + "/providers/Microsoft.Compute/disks/web-data"
	avset := rgPath + "/providers/Microsoft.Compute/availabilitySets/set1"
	// DELETE answers 202 with Location (Resources DeleteByIdResources.json), or with Azure-AsyncOperation
	// as Compute and Network do; 204 when there was nothing; 404 when the resource is gone.
	vmLoc := f.LocationOp("/ops/vm", 2, 200, nil)
	f.On("DELETE", vmPath("web"), func(w http.ResponseWriter, r *http.Request) {
		fakearm.Reply(w, 202, nil, "Location", vmLoc, "Retry-After", "0")
	})
	nicOp := f.AsyncOp("/ops/nic", 2, map[string]any{"status": "Succeeded"})
	f.On("DELETE", nic, func(w http.ResponseWriter, r *http.Request) {
		fakearm.Reply(w, 202, nil, "Azure-AsyncOperation", nicOp, "Retry-After", "0")
	})
	f.On("DELETE", disk, func(w http.ResponseWriter, r *http.Request) { fakearm.Reply(w, 204, nil) })
	f.On("DELETE", gone, notFound("ResourceNotFound", "not found"))
	f.On("DELETE", avset, func(w http.ResponseWriter, r *http.Request) { fakearm.Reply(w, 200, nil) })
	err := c.Delete(context.Background(), "rg1", []string{avset, disk, nic, gone, vmPath("web")})
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, call := range f.Called() {
		order = append(order, strings.TrimPrefix(call, "DELETE "+rgPath+"/providers/"))
	}
	// The two disks are one wave: either may come first.
	if len(order) == 11 && order[8] > order[9] {
		order[8], order[9] = order[9], order[8]
	}
	want := []string{"Microsoft.Compute/virtualMachines/web", "GET /ops/vm", "GET /ops/vm", "GET /ops/vm",
		"Microsoft.Network/networkInterfaces/web-nic", "GET /ops/nic", "GET /ops/nic", "GET /ops/nic",
		"Microsoft.Compute/disks/web-data", "Microsoft.Compute/disks/web-os", "Microsoft.Compute/availabilitySets/set1"}
	if strings.Join(order, "\n") != strings.Join(want, "\n") {
		t.Errorf("order:\n%s\nwant:\n%s", strings.Join(order, "\n"), strings.Join(want, "\n"))
	}
	for id, api := range map[string]string{vmPath("web"): "2025-04-01", nic: "2024-05-01", disk: "2025-01-02", avset: "2025-04-01"} {
		if call, _ := f.Last("DELETE", id); call.APIVersion != api {
			t.Errorf("%s deleted with api-version %q, want %s", id, call.APIVersion, api)
		}
	}
	// A resource of another group is refused before anything is deleted.
	n := len(f.Called())
	other := "/subscriptions/" + fakearm.Sub + "/resourceGroups/prod/providers/Microsoft.Compute/virtualMachines/db"
	if err := c.Delete(context.Background(), "rg1", []string{vmPath("web"), other}); !errors.Is(err, replication.ErrInvalid) || len(f.Called()) != n {
		t.Errorf("other group: %v", err)
	}
	// A failed operation fails the delete with ARM's reason.
	failOp := f.AsyncOp("/ops/fail", 0, map[string]any{"status": "Failed", "error": map[string]any{"code": "NicInUse", "message": "Network Interface web-nic is used by existing resource."}})
	f.On("DELETE", nic, func(w http.ResponseWriter, r *http.Request) {
		fakearm.Reply(w, 202, nil, "Azure-AsyncOperation", failOp)
	})
	if err := c.Delete(context.Background(), "rg1", []string{nic}); err == nil || !strings.Contains(err.Error(), "NicInUse: Network Interface web-nic is used by existing resource.") {
		t.Errorf("failed delete: %v", err)
	}
}

// The VMs of a wave are deleted at once: each one's DELETE arrives while the other's is still running
// (its operation answers only once both have started), so 16 VMs take the time of one.
func TestDeletesOfAWaveRunInParallel(t *testing.T) {
	f, c, _ := newFake(t)
	started := make(chan string, 2)
	bothStarted := make(chan struct{})
	go func() { <-started; <-started; close(bothStarted) }()
	for _, name := range []string{"web", "db"} {
		op := "/ops/del-" + name
		f.On("GET", op, func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-bothStarted:
				fakearm.Reply(w, 200, nil)
			case <-time.After(5 * time.Second):
				fakearm.Reply(w, 500, fakearm.Err("Sequential", "the other VM's delete never started while this one ran"))
			}
		})
		f.On("DELETE", vmPath(name), func(w http.ResponseWriter, r *http.Request) {
			started <- name
			fakearm.Reply(w, 202, nil, "Location", f.Srv.URL+op, "Retry-After", "0")
		})
	}
	if err := c.Delete(context.Background(), "rg1", []string{vmPath("web"), vmPath("db")}); err != nil {
		t.Fatal(err)
	}
}

func TestExportDisk(t *testing.T) {
	f, c, logs := newFake(t)
	disk := rgPath + "/providers/Microsoft.Compute/disks/web-os"
	busy := rgPath + "/providers/Microsoft.Compute/disks/busy"
	sas := "https://md-gpvmcxzlzxgd.partition.blob.storage.azure.net/xx3cqcx53f0v/abcd?sv=2014-02-14&sr=b&sk=key1&" + fakearm.SASSig + "&sp=r"
	// beginGetAccess answers 202 with Location; the Location answers 202 until the URL is ready, then 200
	// with {"accessSAS"} (DiskRP stable/2025-01-02/examples/diskExamples/Disk_BeginGetAccess.json).
	grant := f.LocationOp("/ops/grant", 1, 200, map[string]any{"accessSAS": sas})
	f.On("POST", disk+"/beginGetAccess", func(w http.ResponseWriter, r *http.Request) {
		fakearm.Reply(w, 202, nil, "Location", grant, "Retry-After", "0")
	})
	// A disk attached to a running VM: 409 Conflict, as the service answers it (quoted in
	// microsoft/AzureStorageExplorer#6654).
	f.On("POST", busy+"/beginGetAccess", func(w http.ResponseWriter, r *http.Request) {
		fakearm.Reply(w, 409, fakearm.Err("Conflict", "Access not permitted because disk busy is currently attached to running VM "+vmPath("web")+"."))
	})
	// endGetAccess: 202 with Location, then 200 (Disk_EndGetAccess.json); 404 for a disk that is gone.
	revoke := f.LocationOp("/ops/revoke", 1, 200, nil)
	f.On("POST", disk+"/endGetAccess", func(w http.ResponseWriter, r *http.Request) {
		fakearm.Reply(w, 202, nil, "Location", revoke, "Retry-After", "0")
	})
	f.On("POST", busy+"/endGetAccess", notFound("ResourceNotFound", "not found"))
	ctx := context.Background()
	got, err := c.ExportDisk(ctx, disk, 2*time.Hour)
	if err != nil || got != sas {
		t.Fatalf("export: %q, %v", got, err)
	}
	call, _ := f.Last("POST", disk+"/beginGetAccess")
	var body map[string]any
	json.Unmarshal(call.Body, &body)
	if body["access"] != "Read" || body["durationInSeconds"] != float64(7200) || body["fileFormat"] != "VHD" || call.APIVersion != "2025-01-02" {
		t.Errorf("grant body %s api %s", call.Body, call.APIVersion)
	}
	if _, err := c.ExportDisk(ctx, busy, time.Hour); !errors.Is(err, replication.ErrConflict) || !strings.Contains(err.Error(), "attached to running VM") {
		t.Errorf("busy: %v", err)
	}
	if err := c.EndExport(ctx, disk); err != nil {
		t.Errorf("end: %v", err)
	}
	if err := c.EndExport(ctx, busy); err != nil {
		t.Errorf("end of a disk gone: %v", err)
	}
	for _, bad := range []string{vmPath("web"), "/subscriptions/" + strings.Repeat("1", 36) + "/resourceGroups/rg1/providers/Microsoft.Compute/disks/d"} {
		if _, err := c.ExportDisk(ctx, bad, time.Hour); !errors.Is(err, replication.ErrInvalid) {
			t.Errorf("%s: %v", bad, err)
		}
	}
	if _, err := c.ExportDisk(ctx, disk, 0); !errors.Is(err, replication.ErrInvalid) {
		t.Errorf("zero validity: %v", err)
	}
	if !strings.Contains(logs.String(), "disk export granted") {
		t.Errorf("no log of the export:\n%s", logs)
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"Blob https://a.blob.core.windows.net/c/b.vhd?sv=2021&sig=abc%2Fd&se=x was not found": "Blob https://a.blob.core.windows.net/c/b.vhd?<redacted> was not found",
		"token=eyJ0eXAi.abc and sig=zzz":   "token=<redacted> and sig=<redacted>",
		"Authorization: Bearer eyJ0eXAi.x": "Authorization: Bearer <redacted>",
		"plain https://a/b?comp=list":      "plain https://a/b?comp=list",
	} {
		if got := replication.Redact(in); got != want {
			t.Errorf("replication.Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSettingsGrammar(t *testing.T) {
	for _, ok := range []string{fakearm.Sub, "ABCDEF01-2345-6789-abcd-ef0123456789"} {
		if azarm.CheckSubscriptionID(ok) != nil {
			t.Errorf("%s refused", ok)
		}
	}
	for _, bad := range []string{"", "sub", fakearm.Sub + "0", "{" + fakearm.Sub + "}", "00000000000000000000000000000001"} {
		if !errors.Is(azarm.CheckSubscriptionID(bad), replication.ErrInvalid) {
			t.Errorf("subscription %q accepted", bad)
		}
	}
	for _, ok := range []string{"westeurope", "eastus2", "usgovvirginia"} {
		if CheckLocation(ok) != nil {
			t.Errorf("%s refused", ok)
		}
	}
	for _, bad := range []string{"", "West Europe", "westEurope", "2east", "west-europe", "a"} {
		if !errors.Is(CheckLocation(bad), replication.ErrInvalid) {
			t.Errorf("location %q accepted", bad)
		}
	}
}
