// Package backends turns connection settings into ports for the handler and verify: every port of the
// target region (tables, page blobs, the job queue, the compute) and, through sourceside, the source
// region's. It chooses, per dependency, the Azure adapter or — for a setting UseEmbeddedBroker=true;Path=…
// or UseLocalCompute=true;… — the local stand-in: the handler keeps the stand-ins on purpose, so that
// devhost runs the very app that ships (what it costs: the README's Layout). The agent does not import
// it (sourceside is its own). Functions never import it (it pulls in the Azure SDK); the mains wire its
// ports into them.
package backends

import (
	"context"
	"log/slog"
	"strings"

	_ "github.com/standby-dr/standby/shared/backends/standins" // the handler runs on the local stack too

	"github.com/standby-dr/standby/shared/api/apiserver"
	"github.com/standby-dr/standby/shared/api/apiv1"
	"github.com/standby-dr/standby/shared/azure/pageblobs"
	"github.com/standby-dr/standby/shared/azure/tables"
	"github.com/standby-dr/standby/shared/backends/sourceside"
	"github.com/standby-dr/standby/shared/recovery"
	"github.com/standby-dr/standby/shared/replication"
)

// Setting names (documented in the README's configuration reference); the source side's are sourceside's.
const (
	SettingTarget = "StandbyTargetStorage"
	SettingSB     = "StandbyServiceBus"
	SettingQueue  = "StandbyJobQueue"
	// SettingPeerAPI is the other region's Standby API root (reprotect, failback), SettingPeerKey its key.
	SettingPeerAPI = "StandbyPeerApi"
	SettingPeerKey = "StandbyPeerApiKey"
)

// Backends are the ports the settings configure, each nil when not configured (or not reachable).
type Backends struct {
	State   replication.StateStore
	Pages   replication.PageStore
	Journal replication.JournalStore
	Jobs    replication.JobSender
	// Publisher writes the change stream (the agent's side of it).
	Publisher replication.ChangePublisher
	// Peer is the other region's deployment (nil when StandbyPeerApi is not set).
	Peer recovery.PeerSite
	// DeadLetters reads the job queue's dead-letter queue.
	DeadLetters func(ctx context.Context, max int) ([]apiv1.DeadLetterView, error)
	// Compute brings failed-over VMs up (nil when StandbyCompute is not set); TargetAccountID is the
	// target storage account's resource id, which managed disks import from.
	Compute         recovery.Compute
	TargetAccountID string
	// Probes check every dependency for the health endpoint; one whose setting is missing or wrong
	// answers with that error.
	Probes []replication.Probe
	closer []func()
}

// Close releases the connections the backends hold.
func (b *Backends) Close() {
	for _, c := range b.closer {
		c()
	}
}

// Open builds every port the handler uses. It does not fail: a dependency that is not configured or
// whose client cannot be built is logged, left nil, and reported by its probe.
func Open(ctx context.Context, getenv func(string) string, log *slog.Logger) *Backends {
	b := &Backends{}
	add := func(name string, check func(context.Context) error, err error) {
		if err != nil {
			log.Warn("dependency not available", "dependency", name, "err", err)
			check = func(context.Context) error { return err }
		}
		b.Probes = append(b.Probes, replication.Probe{Name: name, Check: check})
	}
	// Target region storage: tables (state) and page blobs (disks).
	if store, err := StateStore(getenv, SettingTarget); err != nil {
		add("target-tables", nil, err)
	} else {
		b.State = store
		add("target-tables", store.Ping, nil)
	}
	if store, err := sourceside.PageStore(getenv, SettingTarget); err != nil {
		add("target-blobs", nil, err)
	} else {
		b.Pages = store
		add("target-blobs", store.Ping, nil)
	}
	// The cache journal (block blobs in the source region).
	if svc, err := sourceside.BlobService(getenv, sourceside.SettingCache); err != nil {
		add("cache-blobs", nil, err)
	} else {
		b.Journal = sourceside.NewJournal(getenv, svc)
		add("cache-blobs", pageblobs.New(svc).Ping, nil)
	}
	if compute, accountID, err := OpenCompute(getenv, b.Pages, log); err != nil {
		add("compute", nil, err)
	} else {
		b.Compute, b.TargetAccountID = compute, accountID
	}
	// The other region's deployment: reachable only when needed (it may be the region that is down).
	if base := strings.TrimSpace(getenv(SettingPeerAPI)); base != "" {
		b.Peer = apiserver.NewPeer(base, getenv(SettingPeerKey))
	}
	if s, err := sourceside.OpenStream(getenv); err != nil {
		add("eventhubs", nil, err)
	} else {
		b.Publisher, b.closer = s.Publisher, append(b.closer, s.Close)
		add("eventhubs", s.Check, nil)
	}
	if q, err := openQueue(getenv); err != nil {
		add("servicebus", nil, err)
	} else {
		b.Jobs, b.DeadLetters, b.closer = q.sender, q.deadLetters, append(b.closer, q.close)
		add("servicebus", q.check, nil)
	}
	return b
}

// StateStore is the table store of the account a connection setting names.
func StateStore(getenv func(string) string, setting string) (*tables.Store, error) {
	return sourceside.OpenService(getenv, setting, "table", tables.ServiceClient, tables.New)
}
