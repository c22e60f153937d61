// Package sourceside turns connection settings into the ports of the source region: what the agent
// writes to (the journal in the cache account, the change stream) and reads (pageblob: sources, the
// snapshots of managed: disks). It links the Azure adapters and nothing of the target side: no job
// engine, no tables. The local stand-ins (the embedded broker, the local compute) register themselves
// from shared/backends/standins in the builds that include them — the handler, and the agent built with
// -tags standin (make build) — so the agent built for Azure links none of them.
package sourceside

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/service"
	"github.com/standby-dr/standby/shared/azure/azconn"
	"github.com/standby-dr/standby/shared/azure/eventhubs"
	"github.com/standby-dr/standby/shared/azure/journal"
	"github.com/standby-dr/standby/shared/azure/pageblobs"
	"github.com/standby-dr/standby/shared/replication"
)

// Setting names (documented in the README's configuration reference).
const (
	SettingCache     = "StandbyCacheStorage"
	SettingSource    = "StandbySourceStorage"
	SettingEventHubs = "StandbyEventHubs"
	SettingHub       = "StandbyChangeHub"
	SettingJournal   = "StandbyJournalContainer"
	// SettingSourceCompute names the source region's compute, which an agent tracking managed: disks uses.
	SettingSourceCompute = "StandbySourceCompute"
	// clientIDSetting names a user-assigned managed identity (the Azure SDKs' own convention).
	clientIDSetting = "AZURE_CLIENT_ID"
)

// Conn is an open connection: its health check and how to release it.
type Conn struct {
	Check func(context.Context) error
	Close func()
}

// Stream is the change stream's sending side.
type Stream struct {
	Publisher replication.ChangePublisher
	Conn
}

// StandIns open the local stand-ins a setting can name instead of Azure.
type StandIns struct {
	// Stream opens the embedded broker's hub (connection: UseEmbeddedBroker=true;Path=…).
	Stream func(connection, hub string) (Stream, error)
	// Snapshots is the local compute's snapshot service over the source account's pages.
	Snapshots func(dir string, pages replication.PageStore, log *slog.Logger) replication.DiskSnapshots
}

var standIns atomic.Pointer[StandIns]

// RegisterStandIns makes the stand-ins available to every setting read after it.
func RegisterStandIns(s StandIns) { standIns.Store(&s) }

// standInsFor are the registered stand-ins, or an error saying the setting names one this build lacks.
func standInsFor(setting, what string) (*StandIns, error) {
	if s := standIns.Load(); s != nil {
		return s, nil
	}
	return nil, fmt.Errorf("%s names %s, a local stand-in this build does not include: on Azure set it to the resource's "+
		"connection; to run locally, build with -tags standin (make build does)", setting, what)
}

// Ports are what the agent writes to: the journal in the cache account and the change stream.
type Ports struct {
	Journal   replication.JournalStore
	Publisher replication.ChangePublisher
	close     func()
}

// Close releases the connections the ports hold.
func (p *Ports) Close() { p.close() }

// Open builds the agent's ports.
func Open(getenv func(string) string) (*Ports, error) {
	svc, err := BlobService(getenv, SettingCache)
	if err != nil {
		return nil, err
	}
	s, err := OpenStream(getenv)
	if err != nil {
		return nil, err
	}
	return &Ports{Journal: NewJournal(getenv, svc), Publisher: s.Publisher, close: s.Close}, nil
}

// OpenStream is the change stream StandbyEventHubs names: Event Hubs, or the embedded broker.
func OpenStream(getenv func(string) string) (Stream, error) {
	hub := OrDefault(getenv(SettingHub), "changes")
	s, err := azconn.Lookup(getenv, SettingEventHubs, "")
	if err != nil {
		return Stream{}, err
	}
	if azconn.IsEmbeddedBroker(s.ConnectionString) {
		local, err := standInsFor(SettingEventHubs, "the embedded broker")
		if err != nil {
			return Stream{}, err
		}
		return local.Stream(s.ConnectionString, hub)
	}
	p, err := eventhubs.NewPublisher(s, hub)
	if err != nil {
		return Stream{}, err
	}
	return Stream{p, Conn{Close: func() { p.Close(context.Background()) }, Check: func(ctx context.Context) error {
		_, err := p.Properties(ctx)
		return err
	}}}, nil
}

// SourcePages is the source account holding pageblob: disks (StandbySourceStorage, else the cache account).
func SourcePages(getenv func(string) string) (replication.PageStore, error) {
	name := SettingSource
	if getenv(name) == "" && getenv(name+"__blobServiceUri") == "" && getenv(name+"__serviceUri") == "" {
		name = SettingCache
	}
	return PageStore(getenv, name)
}

// PageStore is the page store of the account a connection setting names.
func PageStore(getenv func(string) string, setting string) (*pageblobs.Store, error) {
	return OpenService(getenv, setting, "blob", pageblobs.ServiceClient, pageblobs.New)
}

// BlobService is the blob service client of the account a connection setting names.
func BlobService(getenv func(string) string, setting string) (*service.Client, error) {
	return OpenService(getenv, setting, "blob", pageblobs.ServiceClient, func(c *service.Client) *service.Client { return c })
}

// OpenService resolves a storage setting for the service ("blob", "table"), builds the service client
// and the store over it.
func OpenService[C, S any](getenv func(string) string, setting, svc string, client func(azconn.Setting) (C, error), store func(C) S) (S, error) {
	var zero S
	s, err := azconn.Lookup(getenv, setting, svc)
	if err != nil {
		return zero, err
	}
	c, err := client(s)
	if err != nil {
		return zero, err
	}
	return store(c), nil
}

// NewJournal is the journal container (StandbyJournalContainer, default "journal") of the cache account.
func NewJournal(getenv func(string) string, svc *service.Client) *journal.Store {
	return journal.New(svc, OrDefault(getenv(SettingJournal), "journal"))
}

// OrDefault is v, or def when v is blank.
func OrDefault(v, def string) string {
	if strings.TrimSpace(v) == "" {
		return def
	}
	return v
}

// ManagedIdentity is the app's (or the VM's) own identity: system-assigned, or the user-assigned one
// AZURE_CLIENT_ID names. Deliberately not DefaultAzureCredential: a failover must act as the app, never
// as whatever developer or environment credential happens to be around.
func ManagedIdentity(getenv func(string) string) (azcore.TokenCredential, error) {
	var opts azidentity.ManagedIdentityCredentialOptions
	if id := strings.TrimSpace(getenv(clientIDSetting)); id != "" {
		opts.ID = azidentity.ClientID(id)
	}
	return azidentity.NewManagedIdentityCredential(&opts)
}
