# Standby. The two commands a new user needs: `make demo` and `make test`. Both do their own set-up.
SHELL := /bin/bash
GO ?= go
export GOFLAGS ?= -buildvcs=false

.PHONY: build package vm-image demo test test-unit bench fuzz soak vet check-tracked clean stop azd-check

build:
	$(GO) build -o bin/handler ./cmd/handler
	$(GO) build -o bin/devhost ./cmd/devhost
	$(GO) build -tags standin -o bin/agent ./cmd/agent # the local build: also the embedded broker and the local compute
	$(GO) build -o bin/agent-azure ./cmd/agent       # the build for Azure VMs: no stand-in linked
	$(GO) build -o bin/verify ./cmd/verify
	$(GO) build -o bin/standby ./cmd/standby

# The deployable app: dist/app (host.json, <function>/function.json at the root, bin/handler static
# linux/amd64) and dist/standby-app.zip. devhost runs dist/app, so the demo and the tests run what ships.
package:
	scripts/package.sh dist

# The bootable VM image of the local compute (a Debian cloud kernel, a virtio initramfs, an ext4 OS disk
# with busybox), cached under .local/vm; installs QEMU and the kernel with apt-get when missing.
vm-image:
	scripts/vm-image.sh

demo: build package vm-image
	scripts/demo.sh

# Every test: unit and contract tests (race detector on the concurrent packages), then the cross-process
# end-to-end and fault tests in tests/. Azurite is started first and stopped after.
test: build package vm-image vet check-tracked
	scripts/azurite.sh start
	scripts/npm-ci.sh tools/openapi-ts tsc openapi-client
	STANDBY_REQUIRE_AZURITE=1 STANDBY_REQUIRE_TYPES=1 STANDBY_REQUIRE_QEMU=1 STANDBY_REQUIRE_CHROMIUM=1 STANDBY_REQUIRE_TSC=1 $(GO) test -count=1 -race -timeout 30m ./... ; status=$$?; scripts/azurite.sh stop; exit $$status

# The real Azure Developer CLI packages the app from the root of a fresh clone, offline (tests/azd_test.go):
# AZD names the azd to judge with (default: azd on PATH); without one the test says so and skips.
azd-check:
	STANDBY_AZD=$${AZD:-$$(command -v azd || true)} $(GO) test -count=1 -run TestAzdPackagesTheApp -v ./tests/

# The NBD crash-consistency proof for longer: ten rounds of kill -9 of the guest and the agent (make test
# runs two), then every recovery point, random restores and a failover checked by e2fsck and sqlite3.
soak: build package vm-image
	scripts/azurite.sh start
	STANDBY_REQUIRE_AZURITE=1 STANDBY_REQUIRE_QEMU=1 STANDBY_SOAK_ROUNDS=$${STANDBY_SOAK_ROUNDS:-10} $(GO) test -count=1 -timeout 60m \
	  -run TestNBDGuestDatabaseSurvivesCrashes -v ./tests/ ; status=$$?; scripts/azurite.sh stop; exit $$status

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || (gofmt -l . ; echo "gofmt needed"; exit 1)
	$(GO) vet ./...

# No tracked file may be an executable build output: ELF, Mach-O (thin or fat) or PE, told by its first
# bytes (head and od only, so it runs on a fresh machine). Built binaries go to bin/, which git ignores.
check-tracked:
	@bad=$$(git ls-files -z | while IFS= read -r -d '' f; do \
	  [[ -f $$f && ! -L $$f ]] || continue; \
	  case $$(head -c4 -- "$$f" | od -An -tx1 | tr -d ' \n') in \
	    7f454c46|feedface|feedfacf|cefaedfe|cffaedfe|cafebabe|4d5a*) printf '  %s\n' "$$f" ;; \
	  esac; \
	done); \
	if [[ -n $$bad ]]; then \
	  echo "check-tracked: these tracked files are executable build outputs (ELF, Mach-O or PE):"; \
	  echo "$$bad"; \
	  echo "Untrack them with 'git rm --cached <file>'; build into bin/ (make build), which .gitignore keeps out."; \
	  exit 1; \
	fi

# The benchmarks write gigabytes into Azurite: they start from empty storage and leave none behind.
bench: build
	scripts/azurite.sh reset && scripts/azurite.sh start
	scripts/bench.sh ; status=$$?; scripts/azurite.sh reset; exit $$status

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzDecodeDescriptor -fuzztime 30s ./shared/replication
	$(GO) test -run '^$$' -fuzz FuzzDecodeRequest -fuzztime 30s ./shared/protocol/funcproto
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 30s ./shared/protocol/vhd
	$(GO) test -run '^$$' -fuzz FuzzDecodeBatch -fuzztime 30s ./shared/replication
	$(GO) test -run '^$$' -fuzz FuzzGroupSpec -fuzztime 30s ./shared/replication
	$(GO) test -run '^$$' -fuzz FuzzSeedRequest -fuzztime 30s ./shared/replication
	$(GO) test -run '^$$' -fuzz FuzzOpenPayload -fuzztime 30s ./shared/replication
	$(GO) test -run '^$$' -fuzz FuzzPlanSpec -fuzztime 30s ./shared/recovery
	$(GO) test -run '^$$' -fuzz FuzzPrincipalRoles -fuzztime 30s ./shared/api/apiserver
	$(GO) test -run '^$$' -fuzz FuzzHandshake -fuzztime 30s ./shared/protocol/nbd
	$(GO) test -run '^$$' -fuzz FuzzParseInfoRequest -fuzztime 30s ./shared/protocol/nbd

stop:
	scripts/demo.sh stop

clean: stop
	rm -rf bin dist .local
