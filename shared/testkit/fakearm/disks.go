package fakearm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
)

// Disks emulates, statefully, the Compute provider's managed disks and incremental snapshots of one
// resource group and each snapshot's blob behind its SAS, as the DiskRP and Blob storage document them:
//   - GET …/disks/{name}: properties.diskSizeBytes and the disk's other properties (Disks_Get); DELETE
//     (200, or 204 when there was none);
//   - GET, PUT (creationData.createOption Copy of sourceResourceId, incremental), DELETE
//     …/snapshots/{name}; POST …/beginGetAccess answers accessSAS, POST …/endGetAccess revokes it
//     (Snapshots_*, answered synchronously: 200 with the body);
//   - the SAS: GET ?comp=pagelist (Get Page Ranges; with x-ms-previous-snapshot-url the pages that
//     differ from the older snapshot of the same disk), and GET with x-ms-range (Get Blob).
//
// It lets contract suites (shared/testkit/snapshottest) drive the real adapter against a disk whose
// content a test writes.
type Disks struct {
	f  *Server
	rg string

	mu    sync.Mutex
	disks map[string]*disk     // by name
	snaps map[string]*snapshot // by name
}

type disk struct {
	props map[string]any
	data  []byte
}

type snapshot struct {
	disk    string
	data    []byte
	granted bool
}

// NewDisks starts the emulation for resource group rg (under RGPath's subscription).
func (f *Server) NewDisks(rg string) *Disks {
	d := &Disks{f: f, rg: rg, disks: map[string]*disk{}, snaps: map[string]*snapshot{}}
	base := "/subscriptions/" + Sub + "/resourceGroups/" + rg + "/providers/Microsoft.Compute"
	f.OnUnder(base+"/disks", d.serveDisk)
	f.OnUnder(base+"/snapshots", d.serveSnapshot)
	f.OnUnder("/sas/"+rg, d.serveSAS)
	return d
}

// Create makes a disk of size bytes (zeros) with the given properties (osType, hyperVGeneration, …)
// and returns its id.
func (d *Disks) Create(name string, size int64, props map[string]any) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	p := map[string]any{"diskSizeBytes": size}
	for k, v := range props {
		p[k] = v
	}
	d.disks[name] = &disk{props: p, data: make([]byte, size)}
	return d.id("disks", name)
}

// Write writes data at off of the named disk, as its VM would.
func (d *Disks) Write(name string, off int64, data []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	copy(d.disks[name].data[off:], data)
}

func (d *Disks) id(typ, name string) string {
	return "/subscriptions/" + Sub + "/resourceGroups/" + d.rg + "/providers/Microsoft.Compute/" + typ + "/" + name
}

// nameAfter is the path's segment after the type's ("" when none), and what follows it.
func nameAfter(path, typ string) (string, string) {
	i := strings.Index(strings.ToLower(path), "/"+typ+"/")
	if i < 0 {
		return "", ""
	}
	name, rest, _ := strings.Cut(path[i+len(typ)+2:], "/")
	return name, rest
}

func (d *Disks) serveDisk(w http.ResponseWriter, r *http.Request) {
	name, _ := nameAfter(r.URL.Path, "disks")
	d.mu.Lock()
	defer d.mu.Unlock()
	dk := d.disks[name]
	switch {
	case r.Method == http.MethodDelete && dk == nil:
		Reply(w, 204, nil)
	case r.Method == http.MethodDelete:
		delete(d.disks, name)
		Reply(w, 200, nil)
	case r.Method != http.MethodGet || dk == nil:
		Reply(w, 404, Err("ResourceNotFound", "The Resource 'Microsoft.Compute/disks/"+name+"' was not found."))
	default:
		Reply(w, 200, map[string]any{"id": d.id("disks", name), "name": name, "location": "westeurope", "properties": dk.props})
	}
}

func (d *Disks) serveSnapshot(w http.ResponseWriter, r *http.Request) {
	name, action := nameAfter(r.URL.Path, "snapshots")
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.snaps[name]
	switch {
	case r.Method == http.MethodPut:
		var body struct {
			Properties struct {
				CreationData struct {
					CreateOption, SourceResourceID string
				}
				Incremental bool
			}
		}
		data, _ := io.ReadAll(r.Body)
		json.Unmarshal(data, &body)
		src, _ := nameAfter(body.Properties.CreationData.SourceResourceID, "disks")
		dk := d.disks[src]
		if body.Properties.CreationData.CreateOption != "Copy" || dk == nil || !body.Properties.Incremental {
			Reply(w, 400, Err("InvalidParameter", "a snapshot here copies an existing disk of this group, incrementally"))
			return
		}
		if s == nil {
			d.snaps[name] = &snapshot{disk: src, data: bytes.Clone(dk.data)}
		}
		Reply(w, 200, d.snapshotBody(name))
	case s == nil:
		Reply(w, 404, Err("ResourceNotFound", "The Resource 'Microsoft.Compute/snapshots/"+name+"' was not found."))
	case r.Method == http.MethodGet && action == "":
		Reply(w, 200, d.snapshotBody(name))
	case r.Method == http.MethodPost && strings.EqualFold(action, "beginGetAccess"):
		s.granted = true
		Reply(w, 200, map[string]any{"accessSAS": d.f.Srv.URL + "/sas/" + d.rg + "/" + name + "?sv=2018-03-28&sr=b&" + SASSig + "&sp=r"})
	case r.Method == http.MethodPost && strings.EqualFold(action, "endGetAccess"):
		s.granted = false
		Reply(w, 200, nil)
	case r.Method == http.MethodDelete:
		delete(d.snaps, name)
		Reply(w, 200, nil)
	default:
		Reply(w, 405, Err("MethodNotAllowed", r.Method+" "+r.URL.Path))
	}
}

func (d *Disks) snapshotBody(name string) map[string]any {
	s := d.snaps[name]
	return map[string]any{"id": d.id("snapshots", name), "name": name, "location": "westeurope", "properties": map[string]any{
		"creationData": map[string]any{"createOption": "Copy", "sourceResourceId": d.id("disks", s.disk)}, "incremental": true,
		"diskSizeBytes": len(s.data), "provisioningState": "Succeeded"}}
}

// serveSAS is the snapshot's blob: readable only while access is granted and with the signature.
func (d *Disks) serveSAS(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.snaps[name]
	if s == nil || !s.granted || !strings.Contains(r.URL.RawQuery, SASSig) {
		w.WriteHeader(403) // AuthenticationFailed: the SAS no longer opens anything
		return
	}
	if r.URL.Query().Get("comp") == "pagelist" {
		var prev []byte
		if p := r.Header.Get("x-ms-previous-snapshot-url"); p != "" {
			u, err := url.Parse(p)
			var older *snapshot
			if err == nil {
				older = d.snaps[path.Base(u.Path)]
			}
			if older == nil || older.disk != s.disk {
				w.WriteHeader(400)
				return
			}
			prev = older.data
		}
		var list strings.Builder
		for off := 0; off < len(s.data); off += 512 {
			page := s.data[off : off+512]
			differs := prev == nil && !bytes.Equal(page, make([]byte, 512)) || prev != nil && !bytes.Equal(page, prev[off:off+512])
			if differs {
				fmt.Fprintf(&list, "<PageRange><Start>%d</Start><End>%d</End></PageRange>", off, off+511)
			}
		}
		w.Header().Set("Content-Type", "application/xml")
		w.Header().Set("x-ms-blob-content-length", strconv.Itoa(len(s.data)))
		fmt.Fprintf(w, `<?xml version="1.0" encoding="utf-8"?><PageList>%s</PageList>`, list.String())
		return
	}
	rng := r.Header.Get("x-ms-range")
	if rng == "" {
		rng = r.Header.Get("Range")
	}
	var from, to int
	if _, err := fmt.Sscanf(rng, "bytes=%d-%d", &from, &to); err != nil || from > to || to >= len(s.data) {
		w.WriteHeader(416)
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(to-from+1))
	w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", from, to, len(s.data)))
	w.WriteHeader(206)
	w.Write(s.data[from : to+1])
}
