// Command handler is Standby's Azure Functions custom handler: one binary, one http.ServeMux, serving
// every function (apply, cutpoints, failover, alerts, and the HTTP doors of api and console). The
// Functions host (or devhost locally) starts it with FUNCTIONS_CUSTOMHANDLER_PORT and POSTs invocations
// to /{functionName}; HTTP requests are forwarded as they are to /api/....
//
// It starts even when a dependency is unreachable or not configured: the health endpoint says which,
// and a function that needs it answers 500 with the reason.
package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/standby-dr/standby/shared/backends"
	"github.com/standby-dr/standby/shared/cpuprofile"
	"github.com/standby-dr/standby/shared/protocol/funcproto"
	"github.com/standby-dr/standby/shared/replication"
)

func main() {
	log := newLogger(os.Getenv("STANDBY_LOG_LEVEL"))
	port := os.Getenv("FUNCTIONS_CUSTOMHANDLER_PORT")
	if port == "" {
		port = os.Getenv("FUNCTIONS_HTTPWORKER_PORT")
	}
	if port == "" {
		log.Error("no port: set FUNCTIONS_CUSTOMHANDLER_PORT (the Functions host sets it)")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	stopProfile, err := cpuprofile.Start(os.Getenv(cpuprofile.Setting))
	if err != nil {
		log.Error("no CPU profile", "err", err)
		stopProfile = func() {}
	}
	defer stopProfile()

	deps := backends.Open(ctx, os.Getenv, log)
	defer deps.Close()
	srv := &http.Server{Addr: net.JoinHostPort("127.0.0.1", port), Handler: funcproto.FrontDoor(funcproto.DoorFromEnv(os.Getenv, os.Unsetenv, port), routes(deps, log)), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		srv.Shutdown(shutdownCtx) // lets in-flight invocations finish
	}()
	log.Info("handler listening", "port", port)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("handler stopped", "err", err)
		os.Exit(1)
	}
	log.Info("handler stopped")
}

func newLogger(level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(replication.RedactingHandler(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: l})))
}
