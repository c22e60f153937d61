package main

import (
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/standby-dr/standby/functions/alerts"
	"github.com/standby-dr/standby/functions/api"
	"github.com/standby-dr/standby/functions/apply"
	"github.com/standby-dr/standby/functions/cutpoints"
	"github.com/standby-dr/standby/functions/failover"
	"github.com/standby-dr/standby/shared/api/console"
	"github.com/standby-dr/standby/shared/backends"
	"github.com/standby-dr/standby/shared/notify"
	"github.com/standby-dr/standby/shared/protocol/funcproto"
	"github.com/standby-dr/standby/shared/recovery"
	"github.com/standby-dr/standby/shared/replication"
)

// Settings only the handler reads (documented in the README's configuration reference).
const (
	settingParallel       = "StandbyApplyParallelism"
	settingMaxTargetBytes = "StandbyMaxTargetBytes"
	// settingRecoveryRG is the recovery resource group the deployment made and granted the app its role in.
	settingRecoveryRG = "StandbyRecoveryResourceGroup"
	// settingMaxDelivery is the job queue's MaxDeliveryCount: a step failing on that delivery fails its job.
	settingMaxDelivery = "StandbyJobMaxDeliveryCount"
	// settingWebhookSecret is the HMAC key plan webhook actions and alerts are signed with (never logged);
	// settingWebhookAllowPrivate lets both reach private and loopback addresses (tests, private ops).
	settingWebhookSecret = "StandbyWebhookSecret"
	// settingEntraAuth says App Service authentication is on (the template sets it with authsettingsV2).
	settingEntraAuth           = "StandbyEntraAuth"
	settingWebhookAllowPrivate = "StandbyWebhookAllowPrivate"
	// settingAlertWebhook is where alerts are POSTed (signed with settingWebhookSecret); unset: none.
	settingAlertWebhook = "StandbyAlertWebhook"
)

// trustPrincipals: the identity door trusts the principal header only when the template turned App
// Service authentication on and the platform says it is on (WEBSITE_AUTH_ENABLED, which the host reads
// the same way: EnvironmentExtensions.cs:60-64 of Azure/azure-functions-host@89dc438d; the handler
// inherits the host's environment, DefaultWorkerProcessFactory.cs:43-59).
func trustPrincipals() bool {
	on, _ := strconv.ParseBool(os.Getenv("WEBSITE_AUTH_ENABLED"))
	return on && os.Getenv(settingEntraAuth) == "true"
}

// intSetting is a positive integer setting, def when it is unset or invalid.
func intSetting(log *slog.Logger, name string, def int64) int64 {
	v := os.Getenv(name)
	if strings.TrimSpace(v) == "" {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 {
		log.Warn("ignoring an invalid "+name, "value", v)
		return def
	}
	return n
}

// routes wires the functions (and the console's files) to the backends; a function whose dependencies are missing answers 500.
func routes(d *backends.Backends, log *slog.Logger) http.Handler {
	now := time.Now
	upkeep := &replication.Upkeep{Deps: replication.Deps{State: d.State, Pages: d.Pages, Journal: d.Journal, Log: log.With("function", "cutpoints"), Now: now},
		Targets: d.Targets()}
	if d.State != nil {
		upkeep.Housekeepers = []replication.Housekeeper{recovery.PruneJobs(d.State)}
		drills := &recovery.Admission{State: d.State, Pages: d.Pages, Jobs: d.Jobs, PeerConfigured: d.Peer != nil,
			WebhooksConfigured: os.Getenv(settingWebhookSecret) != "", Log: log.With("function", "cutpoints"), Now: now}
		upkeep.Schedulers = []replication.GroupScheduler{recovery.ScheduleDrills(drills)}
		upkeep.EveryTick = []replication.Housekeeper{recovery.SchedulePlanDrills(drills)}
	}
	applier := &replication.Applier{State: d.State, Pages: d.Pages, Journal: d.Journal, Log: log.With("function", "apply"), Now: now,
		Parallelism: int(intSetting(log, settingParallel, 8))}
	webhooks := recovery.WebhookClient(os.Getenv(settingWebhookAllowPrivate) == "true")
	alertFn := &alerts.Function{Webhook: &notify.Webhook{State: d.State, URL: os.Getenv(settingAlertWebhook), Secret: []byte(os.Getenv(settingWebhookSecret)),
		HTTP: webhooks, Log: log.With("function", "alerts"), Now: now}}
	failFn := &failover.Function{}
	if d.State != nil && d.Pages != nil && d.Jobs != nil {
		failFn.Runner = &recovery.JobRunner{State: d.State, Pages: d.Pages, Journal: d.Journal, Jobs: d.Jobs, Log: log.With("function", "failover"),
			Now: now, MaxDeliveries: intSetting(log, settingMaxDelivery, 10), Peer: d.Peer, Compute: d.Compute, StorageAccountID: d.TargetAccountID,
			Restorer:      &replication.Restorer{State: d.State, Pages: d.Pages, Journal: d.Journal, Parallelism: 8},
			WebhookSecret: []byte(os.Getenv(settingWebhookSecret)), HTTP: webhooks}
	}
	apiLog := log.With("function", "api")
	apiDeps := replication.Deps{State: d.State, Pages: d.Pages, Journal: d.Journal, Log: apiLog, Now: now}
	apiFn := &api.API{Groups: &replication.Groups{Deps: apiDeps, Targets: d.Targets(), Exporter: d.Exporter(),
		MaxTargetBytes: intSetting(log, settingMaxTargetBytes, replication.DefaultMaxTargetBytes), DefaultResourceGroup: os.Getenv(settingRecoveryRG)},
		Agents: &replication.Agents{Deps: apiDeps}, Points: &replication.Points{Deps: apiDeps},
		Jobs: &recovery.Admission{State: d.State, Pages: d.Pages, Jobs: d.Jobs, PeerConfigured: d.Peer != nil,
			WebhooksConfigured: os.Getenv(settingWebhookSecret) != "", Log: apiLog, Now: now},
		Plans:       recovery.Plans{State: d.State, Now: now},
		DeadLetters: d.DeadLetters, Probes: d.Probes, Log: apiLog, Now: now, TrustPrincipals: trustPrincipals()}
	mux := http.NewServeMux()
	mux.Handle("POST /apply", funcproto.Handler(log, "apply", (&apply.Function{Applier: applier}).Invoke))
	mux.Handle("POST /cutpoints", funcproto.Handler(log, "cutpoints", (&cutpoints.Function{Upkeep: upkeep}).Invoke))
	mux.Handle("POST /failover", funcproto.Handler(log, "failover", failFn.Invoke))
	mux.Handle("POST /alerts", funcproto.Handler(log, "alerts", alertFn.Invoke))
	mux.Handle("/api/", apiFn.Handler())
	mux.Handle(console.Path, console.Handler())
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, fmt.Sprintf("no function at %s", r.URL.Path), http.StatusNotFound)
	})
	return mux
}
