package backends

import (
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/standby-dr/standby/shared/azure/azcompute"
)

const (
	testSub     = "6f1c2a3b-0d4e-4f5a-8b9c-0123456789ab"
	testAccount = "/subscriptions/" + testSub + "/resourceGroups/standby/providers/Microsoft.Storage/storageAccounts/standbytgtabc123"
)

func settings(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func TestOpenComputeAzure(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, tc := range []struct {
		name     string
		env      map[string]string
		location string
	}{
		{"explicit location", map[string]string{SettingCompute: "SubscriptionId=" + testSub + ";Location=westeurope"}, "westeurope"},
		{"the host's region", map[string]string{SettingCompute: "SubscriptionId=" + testSub, "REGION_NAME": "westeurope"}, "westeurope"},
		{"the host's display name", map[string]string{SettingCompute: " SubscriptionId=" + testSub + " ; ", "REGION_NAME": "West Europe"}, "westeurope"},
		{"Location wins", map[string]string{SettingCompute: "SubscriptionId=" + testSub + ";Location=northeurope", "REGION_NAME": "West Europe"}, "northeurope"},
		{"user-assigned identity", map[string]string{SettingCompute: "SubscriptionId=" + testSub + ";Location=eastus2", "AZURE_CLIENT_ID": "11111111-2222-3333-4444-555555555555"}, "eastus2"},
	} {
		tc.env[SettingTargetAccountID] = testAccount
		c, accountID, err := OpenCompute(settings(tc.env), nil, log)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		az, ok := c.(*azcompute.Compute)
		if !ok || az.SubscriptionID != testSub || az.Location != tc.location || accountID != testAccount {
			t.Errorf("%s: %T %+v, account %q", tc.name, c, c, accountID)
		}
	}
}

func TestOpenComputeRefusesWithPreciseErrors(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	azure := "SubscriptionId=" + testSub + ";Location=westeurope"
	for _, tc := range []struct {
		value, account, region, want string
	}{
		{"SubscriptionId=not-a-guid;Location=westeurope", testAccount, "", `StandbyCompute: SubscriptionId=: invalid request: subscription id "not-a-guid" is not a GUID`},
		{"SubscriptionId=" + testSub + ";Location=West Europe", testAccount, "", `StandbyCompute: Location=: invalid request: location "West Europe" is not a region name`},
		{"SubscriptionId=" + testSub, testAccount, "", "StandbyCompute: Location= is required when REGION_NAME is not set"},
		{"SubscriptionId=" + testSub, testAccount, "West-Europe", `StandbyCompute: REGION_NAME (Location= unset): invalid request: location "west-europe"`},
		{azure + ";Region=x", testAccount, "", "StandbyCompute: unknown Region=: the Azure compute takes SubscriptionId= and Location= only"},
		{azure + ";Location=northeurope", testAccount, "", "StandbyCompute: Location= is given twice"},
		{azure + ";oops", testAccount, "", `StandbyCompute: "oops" is not Key=value`},
		{azure, "", "", "StandbyCompute: the Azure compute imports managed disks from the target account: set StandbyTargetStorageAccountId to its resource id"},
		{azure, "/subscriptions/" + testSub + "/resourceGroups/standby", "", "set StandbyTargetStorageAccountId to its resource id"},
		{"Location=westeurope", testAccount, "", "StandbyCompute: want SubscriptionId=<guid>[;Location=<region>] (Azure) or UseLocalCompute=true"},
		{"UseLocalCompute=true;Dir=/x;Images=/y", "", "", "StandbyCompute: Types= is required"},
		{"UseLocalCompute=true;Dir=/x;Images=/y;Types=/z;SubscriptionId=" + testSub, "", "", "StandbyCompute: unknown SubscriptionId=: the local compute takes Dir=, Images= and Types="},
	} {
		env := map[string]string{SettingCompute: tc.value, SettingTargetAccountID: tc.account, "REGION_NAME": tc.region}
		_, _, err := OpenCompute(settings(env), nil, log)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q (account %q, region %q): %v\nwant it to contain %q", tc.value, tc.account, tc.region, err, tc.want)
		}
	}
	if c, _, err := OpenCompute(settings(nil), nil, log); c != nil || err != nil {
		t.Errorf("unset: %v, %v", c, err)
	}
}
