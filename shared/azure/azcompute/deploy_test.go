package azcompute

import (
	"context"
	"encoding/json"
	"errors"
	"github.com/standby-dr/standby/shared/testkit/fakearm"
	"net/http"
	"strings"
	"testing"

	"github.com/standby-dr/standby/shared/recovery"
	"github.com/standby-dr/standby/shared/replication"
)

func sampleRequest(t *testing.T) recovery.DeploymentRequest {
	t.Helper()
	vm := replication.VMSpec{Name: "web", Size: "Standard_B1s", Disks: []replication.DiskSpec{{Name: "os", SizeBytes: 20 << 20,
		Role: replication.DiskRoleOS, OSType: "Linux", HyperVGeneration: "V1", SKU: "Standard_LRS"}}}
	tpl, values := recovery.MachineDeployment(recovery.MachinePlan{VM: vm, Suffix: "0123abcd", Subnet: "vnet/default",
		StorageAccountID: "/subscriptions/" + fakearm.Sub + "/resourceGroups/rg1/providers/Microsoft.Storage/storageAccounts/st",
		DiskURL:          func(string) string { return "https://st.blob.core.windows.net/c/web/os.vhd" }})
	var req recovery.DeploymentRequest
	req.Properties.Mode, req.Properties.Template, req.Properties.Parameters = "Incremental", tpl, map[string]map[string]any{}
	for k, v := range values {
		req.Properties.Parameters[k] = map[string]any{"value": v}
	}
	return req
}

// deploymentBody is a deployment as GET and PUT answer it (azure-rest-api-specs, Microsoft.Resources
// stable/2021-04-01/examples/PutDeploymentResourceGroup.json).
func deploymentBody(name, state, digest string, extra map[string]any) map[string]any {
	props := map[string]any{"templateHash": "0000000000000000000", "parameters": map[string]any{}, "mode": "Incremental",
		"provisioningState": state, "timestamp": "2020-06-05T01:20:01.723776Z", "correlationId": "00000000-0000-0000-0000-000000000000",
		"providers": []any{}, "dependencies": []any{}}
	for k, v := range extra {
		props[k] = v
	}
	b := map[string]any{"id": depPath(name), "name": name, "type": "Microsoft.Resources/deployments", "properties": props}
	if digest != "" {
		b["tags"] = map[string]any{requestTag: digest}
	}
	return b
}

func notFound(code, msg string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		fakearm.Reply(w, http.StatusNotFound, fakearm.Err(code, msg))
	}
}

func TestDeployValidatesThenStartsWithoutWaiting(t *testing.T) {
	f, c, _ := newFake(t)
	f.On("GET", depPath("d1"), notFound("DeploymentNotFound", "Deployment 'd1' could not be found."))
	// Deployments_Validate answers 200 with a DeploymentValidateResult (its properties).
	f.On("POST", depPath("d1")+"/validate", func(w http.ResponseWriter, r *http.Request) {
		fakearm.Reply(w, http.StatusOK, map[string]any{"properties": deploymentBody("d1", "Succeeded", "", nil)["properties"]})
	})
	// The PUT answers 201 with the deployment Accepted and its operation in Azure-AsyncOperation.
	opPath := "/subscriptions/" + fakearm.Sub + "/resourcegroups/rg1/providers/Microsoft.Resources/deployments/d1/operationStatuses/1"
	f.On("PUT", depPath("d1"), func(w http.ResponseWriter, r *http.Request) {
		fakearm.Reply(w, http.StatusCreated, deploymentBody("d1", "Accepted", "", nil), "Azure-AsyncOperation", f.Srv.URL+opPath)
	})
	req := sampleRequest(t)
	if err := c.Deploy(context.Background(), "rg1", "d1", req); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(f.Called(), "\n")
	want := strings.Join([]string{"GET " + depPath("d1"), "POST " + depPath("d1") + "/validate", "PUT " + depPath("d1")}, "\n")
	if !strings.EqualFold(got, want) {
		t.Fatalf("calls:\n%s\nwant:\n%s", got, want)
	}
	put, _ := f.Last("PUT", depPath("d1"))
	var body struct {
		Properties struct {
			Mode       string
			Template   recovery.Template
			Parameters map[string]map[string]any
		}
		Tags map[string]string
	}
	if err := json.Unmarshal(put.Body, &body); err != nil {
		t.Fatal(err)
	}
	digest, _ := requestDigest(req)
	if body.Properties.Mode != "Incremental" || len(body.Properties.Template.Resources) != 3 || body.Properties.Parameters["vmName"]["value"] != "web-0123abcd" || body.Tags[requestTag] != digest {
		t.Errorf("PUT body %s", put.Body)
	}
	if put.APIVersion != "2021-04-01" || put.Auth != "Bearer "+fakearm.Token {
		t.Errorf("PUT api-version %q auth %q", put.APIVersion, put.Auth)
	}
}

func TestDeployRefusalsAreInvalidAndNothingIsStarted(t *testing.T) {
	// A preflight refusal as ARM sends it: 400, InvalidTemplateDeployment with the provider's detail
	// naming the property (DeploymentValidateResult.error, Deployments_Validate 400).
	refusal := fakearm.Err("InvalidTemplateDeployment", "The template deployment 'd1' is not valid according to the validation procedure. The tracking id is 'x'. See inner errors for details.",
		map[string]any{"code": "InvalidParameter", "target": "vmSize", "message": "The value Standard_Nope provided for the VM size is not valid."})
	for name, setup := range map[string]func(f *fakearm.Server){
		"400 at once": func(f *fakearm.Server) {
			f.On("POST", depPath("d1")+"/validate", func(w http.ResponseWriter, r *http.Request) { fakearm.Reply(w, http.StatusBadRequest, refusal) })
		},
		"202 then 400 at the Location": func(f *fakearm.Server) {
			loc := f.LocationOp("/ops/validate1", 2, http.StatusBadRequest, refusal)
			f.On("POST", depPath("d1")+"/validate", func(w http.ResponseWriter, r *http.Request) {
				fakearm.Reply(w, http.StatusAccepted, nil, "Location", loc, "Retry-After", "0")
			})
		},
		"200 with an error": func(f *fakearm.Server) {
			f.On("POST", depPath("d1")+"/validate", func(w http.ResponseWriter, r *http.Request) { fakearm.Reply(w, http.StatusOK, refusal) })
		},
	} {
		t.Run(name, func(t *testing.T) {
			f, c, _ := newFake(t)
			f.On("GET", depPath("d1"), notFound("DeploymentNotFound", "Deployment 'd1' could not be found."))
			setup(f)
			err := c.Deploy(context.Background(), "rg1", "d1", sampleRequest(t))
			if !errors.Is(err, replication.ErrInvalid) || !strings.Contains(err.Error(), "InvalidTemplateDeployment") ||
				!strings.Contains(err.Error(), "InvalidParameter: The value Standard_Nope provided for the VM size is not valid. (target vmSize)") {
				t.Fatalf("err = %v", err)
			}
			t.Log(err)
			if _, put := f.Last("PUT", depPath("d1")); put {
				t.Error("a refused deployment was started")
			}
		})
	}
	t.Run("missing resource group", func(t *testing.T) {
		f, c, _ := newFake(t)
		missing := notFound("ResourceGroupNotFound", "Resource group 'rg1' could not be found.")
		f.On("GET", depPath("d1"), missing)
		f.On("POST", depPath("d1")+"/validate", missing)
		err := c.Deploy(context.Background(), "rg1", "d1", sampleRequest(t))
		if !errors.Is(err, replication.ErrInvalid) || !strings.Contains(err.Error(), "ResourceGroupNotFound") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestDeploySameRequestAgainChangesNothing(t *testing.T) {
	req := sampleRequest(t)
	digest, _ := requestDigest(req)
	for _, tc := range []struct {
		state, digest string
		redeploys     bool
	}{
		{"Succeeded", digest, false},
		{"Running", digest, false}, // still going: a redelivered step must not start it twice
		{"Failed", digest, true},   // a retry of a failed deployment is a new attempt
		{"Succeeded", "another", true},
		{"Succeeded", "", true}, // not ours, or made before the tag
	} {
		f, c, _ := newFake(t)
		f.On("GET", depPath("d1"), func(w http.ResponseWriter, r *http.Request) {
			fakearm.Reply(w, http.StatusOK, deploymentBody("d1", tc.state, tc.digest, nil))
		})
		f.On("POST", depPath("d1")+"/validate", func(w http.ResponseWriter, r *http.Request) { fakearm.Reply(w, http.StatusOK, map[string]any{}) })
		f.On("PUT", depPath("d1"), func(w http.ResponseWriter, r *http.Request) {
			fakearm.Reply(w, http.StatusCreated, deploymentBody("d1", "Accepted", digest, nil), "Azure-AsyncOperation", f.Srv.URL+"/ops/1")
		})
		if err := c.Deploy(context.Background(), "rg1", "d1", req); err != nil {
			t.Fatal(err)
		}
		if _, put := f.Last("PUT", depPath("d1")); put != tc.redeploys {
			t.Errorf("%s with digest %q: deployed again = %v, want %v", tc.state, tc.digest, put, tc.redeploys)
		}
	}
	// The digest covers template and parameters, and nothing else decides it.
	other := sampleRequest(t)
	other.Properties.Parameters["vmSize"] = map[string]any{"value": "Standard_D2s_v5"}
	if d, _ := requestDigest(other); d == digest {
		t.Error("a different parameter hashes the same")
	}
	if d, _ := requestDigest(sampleRequest(t)); d != digest {
		t.Error("the same request hashes differently")
	}
}

func TestDeploymentStates(t *testing.T) {
	f, c, _ := newFake(t)
	vmID := rgPath + "/providers/Microsoft.Compute/virtualMachines/web"
	f.On("GET", depPath("running"), func(w http.ResponseWriter, r *http.Request) {
		fakearm.Reply(w, 200, deploymentBody("running", "Running", "", nil))
	})
	f.On("GET", depPath("accepted"), func(w http.ResponseWriter, r *http.Request) {
		fakearm.Reply(w, 200, deploymentBody("accepted", "Accepted", "", nil))
	})
	f.On("GET", depPath("ok"), func(w http.ResponseWriter, r *http.Request) {
		fakearm.Reply(w, 200, deploymentBody("ok", "Succeeded", "", map[string]any{"outputResources": []any{map[string]any{"id": vmID}, map[string]any{"id": vmID + "-nic"}}}))
	})
	// A failed deployment's error as ARM records it: DeploymentFailed, the operations' errors in details.
	f.On("GET", depPath("failed"), func(w http.ResponseWriter, r *http.Request) {
		fakearm.Reply(w, 200, deploymentBody("failed", "Failed", "", map[string]any{"error": fakearm.Err("DeploymentFailed", "At least one resource deployment operation failed.",
			map[string]any{"code": "Conflict", "message": "{\"status\":\"Failed\"}", "details": []any{map[string]any{"code": "ImageBlobNotFound", "message": "Blob https://st.blob.core.windows.net/c/os.vhd?sv=2021&" + fakearm.SASSig + " was not found."}}})["error"]}))
	})
	f.On("GET", depPath("canceled"), func(w http.ResponseWriter, r *http.Request) {
		fakearm.Reply(w, 200, deploymentBody("canceled", "Canceled", "", nil))
	})
	f.On("GET", depPath("gone"), notFound("DeploymentNotFound", "Deployment 'gone' could not be found."))
	ctx := context.Background()
	for name, want := range map[string]string{"running": recovery.DeploymentRunning, "accepted": recovery.DeploymentRunning,
		"ok": recovery.DeploymentSucceeded, "failed": recovery.DeploymentFailed, "canceled": recovery.DeploymentFailed} {
		st, err := c.Deployment(ctx, "rg1", name)
		if err != nil || st.State != want {
			t.Errorf("%s: %+v, %v; want %s", name, st, err, want)
		}
	}
	st, _ := c.Deployment(ctx, "rg1", "ok")
	if len(st.Resources) != 2 || st.Resources[0] != vmID {
		t.Errorf("resources %v", st.Resources)
	}
	st, _ = c.Deployment(ctx, "rg1", "failed")
	if !strings.Contains(st.Error, "DeploymentFailed: At least one resource deployment operation failed.; Conflict:") ||
		!strings.Contains(st.Error, "ImageBlobNotFound: Blob https://st.blob.core.windows.net/c/os.vhd?<redacted> was not found.") || strings.Contains(st.Error, "SECRET") {
		t.Errorf("error %q", st.Error)
	}
	if st, _ = c.Deployment(ctx, "rg1", "canceled"); st.Error != "deployment Canceled" {
		t.Errorf("canceled: %q", st.Error)
	}
	if _, err := c.Deployment(ctx, "rg1", "gone"); !errors.Is(err, replication.ErrNotFound) {
		t.Errorf("missing deployment: %v", err)
	}
}
