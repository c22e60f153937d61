package azcompute

import (
	"context"
	"errors"
	"fmt"
	"github.com/standby-dr/standby/shared/azure/azarm"
	"github.com/standby-dr/standby/shared/replication"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v7"
	"github.com/standby-dr/standby/shared/recovery"
)

// VM reads the VM with its instance view (GET …/virtualMachines/{name}?$expand=instanceView).
//
// Healthy means running with its guest agent Ready (instanceView.vmAgent.statuses holds
// ProvisioningState/succeeded): the agent reaching the host is the one sign from inside the guest that
// ARM reports without any network path to the VM, which an isolated drill does not have — the guest
// booted, its OS runs and it has its host network. A guest without the Azure VM agent therefore never
// reports healthy and its job fails after recovery.VMBootTimeout, with the tail of its serial console.
//
// Detail, when not healthy: the tail of the boot diagnostics serial log when the VM has boot diagnostics
// (retrieveBootDiagnosticsData gives a short-lived SAS URL, read with a plain GET and never logged or
// returned), else the instance view's statuses.
func (c *Compute) VM(ctx context.Context, rg, name string) (recovery.VMStatus, error) {
	res, err := c.vms.Get(ctx, rg, name, &armcompute.VirtualMachinesClientGetOptions{Expand: to.Ptr(armcompute.InstanceViewTypesInstanceView)})
	if err != nil {
		return recovery.VMStatus{}, azarm.Translate(err, "reading VM "+name)
	}
	var view *armcompute.VirtualMachineInstanceView
	if res.Properties != nil {
		view = res.Properties.InstanceView
	}
	power, ready, statuses := readInstanceView(view)
	st := recovery.VMStatus{ID: str(res.ID), PowerState: power, Healthy: power == "running" && ready}
	if st.Healthy {
		st.Evidence = statuses
	}
	if !st.Healthy {
		if tail := c.serialTail(ctx, rg, name); tail != "" {
			st.Detail = "serial console: " + tail
		} else {
			st.Detail = statuses
		}
	}
	return st, nil
}

// readInstanceView gives the power state ("running"; "stopped" for PowerState/stopped and
// PowerState/deallocated, which both mean the guest is not running; else the state as ARM names it:
// starting, stopping, deallocating, unknown), whether the VM agent is Ready, and the statuses as text.
func readInstanceView(v *armcompute.VirtualMachineInstanceView) (power string, ready bool, statuses string) {
	power = "unknown"
	if v == nil {
		return power, false, "no instance view yet"
	}
	var text []string
	for _, s := range v.Statuses {
		if s == nil {
			continue
		}
		code := str(s.Code)
		if state, ok := strings.CutPrefix(code, "PowerState/"); ok {
			power = state
			if state == "deallocated" {
				power = "stopped"
			}
		}
		text = append(text, statusText(s))
	}
	agent := "VM agent: no status"
	if v.VMAgent != nil {
		var parts []string
		for _, s := range v.VMAgent.Statuses {
			if s == nil {
				continue
			}
			ready = ready || strings.EqualFold(str(s.Code), "ProvisioningState/succeeded")
			parts = append(parts, statusText(s))
		}
		if len(parts) > 0 {
			agent = "VM agent: " + strings.Join(parts, ", ")
		}
	}
	return power, ready, strings.Join(append(text, agent), "; ")
}

func statusText(s *armcompute.InstanceViewStatus) string {
	t := str(s.Code)
	if d := str(s.DisplayStatus); d != "" {
		t += " (" + d + ")"
	}
	if m := str(s.Message); m != "" {
		t += ": " + m
	}
	return replication.Redact(t)
}

// serialTailBytes is how much of the serial log's end a VM's detail shows.
const serialTailBytes = 2048

// serialTail is the end of the VM's serial console log, or "" when there is none to read (boot
// diagnostics off, not written yet, or unreachable: the statuses then stand in). The SAS URL lives only
// in this function's variables.
func (c *Compute) serialTail(ctx context.Context, rg, name string) string {
	res, err := c.vms.RetrieveBootDiagnosticsData(ctx, rg, name, &armcompute.VirtualMachinesClientRetrieveBootDiagnosticsDataOptions{
		SasURIExpirationTimeInMinutes: to.Ptr[int32](5)})
	if err != nil || res.SerialConsoleLogBlobURI == nil || *res.SerialConsoleLogBlobURI == "" {
		if err != nil {
			c.Log.Debug("no boot diagnostics", "resourceGroup", rg, "vm", name, "err", azarm.Translate(err, "boot diagnostics"))
		}
		return ""
	}
	tail, err := c.readTail(ctx, *res.SerialConsoleLogBlobURI, serialTailBytes)
	if err != nil {
		c.Log.Debug("serial log unreadable", "resourceGroup", rg, "vm", name, "err", err)
		return ""
	}
	return tail
}

// readTail reads the last n bytes of a blob behind a SAS URL: a HEAD for its length, then a ranged GET
// (Blob service Get Blob Properties and Get Blob with Range). Its errors never include the URL.
func (c *Compute) readTail(ctx context.Context, sasURL string, n int64) (string, error) {
	size, err := c.blobRequest(ctx, http.MethodHead, sasURL, "", nil)
	if err != nil || size <= 0 {
		return "", err
	}
	var buf strings.Builder
	from := max(0, size-n)
	if _, err := c.blobRequest(ctx, http.MethodGet, sasURL, fmt.Sprintf("bytes=%d-%d", from, size-1), &buf); err != nil {
		return "", err
	}
	tail := buf.String()
	if i := strings.IndexByte(tail, '\n'); from > 0 && i >= 0 {
		tail = tail[i+1:] // the first line is cut: start at the next whole one
	}
	return printable(tail), nil
}

// blobRequest sends one request to the blob and returns its Content-Length, copying the body into w.
func (c *Compute) blobRequest(ctx context.Context, method, sasURL, byteRange string, w io.Writer) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, method, sasURL, nil)
	if err != nil {
		return 0, errors.New("serial log address is not a URL")
	}
	req.Header.Set("x-ms-version", "2021-08-06")
	if byteRange != "" {
		req.Header.Set("Range", byteRange)
	}
	client := c.HTTP
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error // its text holds the URL, signature and all: keep only the cause
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, fmt.Errorf("reading the serial log: %s", replication.Redact(err.Error()))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusPartialContent {
		return 0, fmt.Errorf("reading the serial log: HTTP %d", resp.StatusCode)
	}
	if w != nil {
		if _, err := io.Copy(w, io.LimitReader(resp.Body, 1<<20)); err != nil {
			return 0, fmt.Errorf("reading the serial log: %s", replication.Redact(err.Error()))
		}
	}
	return resp.ContentLength, nil
}

// printable keeps the log's last lines readable in a job's error: control characters (terminal escapes)
// dropped.
func printable(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\t' || r >= ' ' && r != 0x7f {
			return r
		}
		return -1
	}, s)
	return strings.TrimSpace(replication.Redact(s))
}
