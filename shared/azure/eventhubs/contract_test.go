package eventhubs_test

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azeventhubs/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azeventhubs/v2/checkpoints"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/standby-dr/standby/shared/azure/azconn"
	"github.com/standby-dr/standby/shared/azure/eventhubs"
	"github.com/standby-dr/standby/shared/replication"
	"github.com/standby-dr/standby/shared/testkit/brokertest"
)

// azureHub binds the contract suite to a real event hub: the adapter publishes, the SDK's consumer and
// blob checkpoint store read back.
type azureHub struct {
	pub       *eventhubs.Publisher
	consumer  *azeventhubs.ConsumerClient
	store     *checkpoints.BlobStore
	ids       []string
	namespace string
	hub       string
}

func (h *azureHub) Publisher() replication.ChangePublisher      { return h.pub }
func (h *azureHub) PartitionCount(context.Context) (int, error) { return len(h.ids), nil }
func (h *azureHub) LastSequence(ctx context.Context, p int) (int64, error) {
	props, err := h.consumer.GetPartitionProperties(ctx, h.ids[p], nil)
	if err != nil {
		return 0, err
	}
	if props.IsEmpty {
		return -1, nil
	}
	return props.LastEnqueuedSequenceNumber, nil
}
func (h *azureHub) Read(ctx context.Context, p int, after int64, max int, wait time.Duration) ([]brokertest.HubEvent, error) {
	pc, err := h.consumer.NewPartitionClient(h.ids[p], &azeventhubs.PartitionClientOptions{
		StartPosition: azeventhubs.StartPosition{SequenceNumber: &after}})
	if err != nil {
		return nil, err
	}
	defer pc.Close(ctx)
	rctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	events, err := pc.ReceiveEvents(rctx, max, nil)
	if err != nil && rctx.Err() == nil {
		return nil, err
	}
	out := make([]brokertest.HubEvent, len(events))
	for i, e := range events {
		props := map[string]string{}
		for k, v := range e.Properties {
			if s, ok := v.(string); ok {
				props[k] = s
			}
		}
		out[i] = brokertest.HubEvent{SequenceNumber: e.SequenceNumber, Offset: e.Offset, Body: e.Body, Properties: props}
	}
	return out, nil
}
func (h *azureHub) Checkpoint(ctx context.Context, group string, p int, e brokertest.HubEvent) error {
	return h.store.SetCheckpoint(ctx, azeventhubs.Checkpoint{ConsumerGroup: group, EventHubName: h.hub,
		FullyQualifiedNamespace: h.namespace, PartitionID: h.ids[p], SequenceNumber: &e.SequenceNumber, Offset: &e.Offset}, nil)
}
func (h *azureHub) LoadCheckpoint(ctx context.Context, group string, p int) (int64, bool, error) {
	cps, err := h.store.ListCheckpoints(ctx, h.namespace, h.hub, group, nil)
	if err != nil {
		return 0, false, err
	}
	for _, cp := range cps {
		if cp.PartitionID == h.ids[p] && cp.SequenceNumber != nil {
			return *cp.SequenceNumber, true, nil
		}
	}
	return -1, false, nil
}

// TestHubContractAzure runs the hub contract against a real namespace. It needs
// STANDBY_TEST_EVENTHUBS (connection string), STANDBY_TEST_EVENTHUB (hub name, default "changes") and
// STANDBY_TEST_CHECKPOINT_STORAGE (a storage connection string for the checkpoint container).
func TestHubContractAzure(t *testing.T) {
	cs := os.Getenv("STANDBY_TEST_EVENTHUBS")
	if cs == "" {
		t.Skip("STANDBY_TEST_EVENTHUBS is not set: the hub contract runs against the embedded broker only (shared/standin/broker)")
	}
	hubName := os.Getenv("STANDBY_TEST_EVENTHUB")
	if hubName == "" {
		hubName = "changes"
	}
	ctx := context.Background()
	pub, err := eventhubs.NewPublisher(azconn.Setting{Name: "STANDBY_TEST_EVENTHUBS", ConnectionString: cs}, hubName)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close(ctx)
	consumer, err := azeventhubs.NewConsumerClientFromConnectionString(cs, hubName, azeventhubs.DefaultConsumerGroup, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close(ctx)
	props, err := consumer.GetEventHubProperties(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := container.NewClientFromConnectionString(os.Getenv("STANDBY_TEST_CHECKPOINT_STORAGE"), "contract-checkpoints-"+strconv.FormatInt(time.Now().Unix(), 10), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cc.Create(ctx, nil); err != nil {
		t.Fatal(err)
	}
	defer cc.Delete(ctx, nil)
	store, err := checkpoints.NewBlobStore(cc, nil)
	if err != nil {
		t.Fatal(err)
	}
	brokertest.RunHub(t, &azureHub{pub: pub, consumer: consumer, store: store, ids: props.PartitionIDs,
		namespace: namespaceOf(cs), hub: hubName})
}

// namespaceOf extracts the namespace host from a connection string's Endpoint=sb://host/.
func namespaceOf(cs string) string {
	for _, part := range strings.Split(cs, ";") {
		if k, v, ok := strings.Cut(part, "="); ok && strings.EqualFold(k, "Endpoint") {
			return strings.Trim(strings.TrimPrefix(v, "sb://"), "/")
		}
	}
	return ""
}
