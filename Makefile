# The one place that lists the project's commands. README, .ci/run and
# docs/ call these targets.

SHELL := /bin/bash
GO ?= go
# The newest vX.Y.Z tag, or 0.1.0 before the first release.
VERSION ?= $(shell git describe --tags --abbrev=0 --match 'v[0-9]*' 2>/dev/null | sed 's/^v//' | grep -E '^[0-9]+(\.[0-9]+)*$$' || echo 0.1.0)
RELEASE ?= 1
DIST ?= dist
CPUS ?=
COMPRESSION ?=
FUZZTIME ?= 60s
NAME := qemu-user-static-go
# Both builds stamp the time of the last commit (pkg/assemble's own
# fallback when there is no git: 2025-01-01), so they agree.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 1735689600)
export SOURCE_DATE_EPOCH
RPMBUILD_TOPDIR = $(abspath $(DIST))/rpmbuild
# SIGN_KEY is an OpenPGP private key file (armored or binary, one private
# key), as a make variable or in the environment. When it is set, make rpm
# signs the packages with it and make repo signs repodata/repomd.xml
# (repomd.xml.asc, detached and armored) and exports the public key as
# $(DIST)/$(REPO_KEY). A protected key's passphrase comes from
# $NFPM_RPM_PASSPHRASE (or $NFPM_PASSPHRASE) in the environment, never
# from the command line.
SIGN_KEY ?=
REPO_KEY := RPM-GPG-KEY-$(NAME)

# Debian packages the build and the tests need, as "command:package".
# debootstrap builds the Debian sid test root (rpm 6.1, dnf5, systemd 262)
# on first use, into /var/cache/qemu-user-static-go/test-roots.
DEB_TOOLS := qemu-aarch64-static:qemu-user-static rpm:rpm rpmbuild:rpm dnf:dnf \
	createrepo_c:createrepo-c rpmlint:rpmlint cpio:cpio unshare:util-linux \
	zsh:zsh fish:fish groff:groff-base debootstrap:debootstrap gpg:gnupg
SYSTEMD_BINFMT := /lib/systemd/systemd-binfmt

.PHONY: all deps rpm rpmbuild binfmtctl binfmtctl-docs binfmtctl-docs-update man test test-root vet fmt-check unit fuzz load e2e bench bench-go dist repo clean

all: rpm

# deps installs, with apt-get, whatever is missing. Nothing is installed
# when everything is there already, so it is cheap to run every time.
deps:
	@missing=""; \
	for t in $(DEB_TOOLS); do \
	  cmd=$${t%%:*}; pkg=$${t##*:}; \
	  command -v $$cmd >/dev/null 2>&1 || missing="$$missing $$pkg"; \
	done; \
	[ -x $(SYSTEMD_BINFMT) ] || missing="$$missing systemd"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	  elif command -v dnf >/dev/null; then \
	    dnf install -y $$missing; \
	  else echo "install these packages:$$missing" >&2; exit 1; fi; \
	fi

binfmtctl:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w -X github.com/qemu-user-static-go/qemu-user-static-go/pkg/binfmtctl.Version=$(VERSION)" -o $(DIST)/binfmtctl ./cmd/binfmtctl

# binfmtctl-docs writes binfmtctl's manual page and shell completions,
# generated from the command table its parser reads, into $(DIST):
# binfmtctl.8, binfmtctl.bash, _binfmtctl (zsh) and binfmtctl.fish.
binfmtctl-docs: binfmtctl
	$(DIST)/binfmtctl manual >$(DIST)/binfmtctl.8
	$(DIST)/binfmtctl completion bash >$(DIST)/binfmtctl.bash
	$(DIST)/binfmtctl completion zsh >$(DIST)/_binfmtctl
	$(DIST)/binfmtctl completion fish >$(DIST)/binfmtctl.fish

# binfmtctl-docs-update renders binfmtctl's manual page and completions
# from its command table into pkg/binfmtctl/docs/, which the helper
# embeds (so that it need not link the renderers): run it after changing
# a command or flag; make test fails until then (TestEmbeddedDocs).
binfmtctl-docs-update:
	UPDATE_DOCS=1 $(GO) test -count=1 -run '^TestEmbeddedDocs$$' ./pkg/binfmtctl

# man writes the build tool's manual page and shell completions, generated
# from the flag definitions its parser reads, into $(DIST):
# qemu-user-static-go.1 (man -l reads it), qemu-user-static-go.bash,
# _qemu-user-static-go (zsh) and qemu-user-static-go.fish. The tool is not
# packaged; `qemu-user-static-go help COMMAND` prints the same help.
man:
	mkdir -p $(DIST)
	$(GO) build -ldflags "-X github.com/qemu-user-static-go/qemu-user-static-go/pkg/buildtool.Version=$(VERSION)" -o $(DIST)/$(NAME) ./cmd/$(NAME)
	$(DIST)/$(NAME) manual >$(DIST)/$(NAME).1
	$(DIST)/$(NAME) completion bash >$(DIST)/$(NAME).bash
	$(DIST)/$(NAME) completion zsh >$(DIST)/_$(NAME)
	$(DIST)/$(NAME) completion fish >$(DIST)/$(NAME).fish

# rpm builds qemu-user-static-go-VERSION-RELEASE.ARCH.rpm, from every qemu
# interpreter found on the machine, and binfmtctl-VERSION-RELEASE.ARCH.rpm,
# the helper alone, into dist/, both signed with SIGN_KEY when that is set.
rpm: deps
	$(GO) run ./cmd/qemu-user-static-go build --version $(VERSION) --release $(RELEASE) --output $(DIST) \
	  $(if $(CPUS),--cpus $(CPUS)) $(if $(COMPRESSION),--compression $(COMPRESSION)) \
	  $(if $(SIGN_KEY),--sign-key $(abspath $(SIGN_KEY)))

# dist writes $(DIST)/qemu-user-static-go-VERSION.tar.gz, the sources of
# qemu-user-static-go.spec: the tracked files and vendor/, so that
# rpmbuild needs no network, with fixed times and owners, so that a commit
# gives the same bytes. The scriptlets go next to it: the spec %includes
# them (Source1-N) when rpmbuild reads it, before anything is unpacked.
# The spec's sources besides the tarball: the scriptlets and file trigger
# bodies it %includes (Source1..N in qemu-user-static-go.spec, each a file
# of scriptlets/).
SPEC_SOURCES = $(addprefix scriptlets/,$(shell awk '/^Source[1-9][0-9]*:/ { print $$2 }' $(NAME).spec))
dist:
	rm -rf $(DIST)/$(NAME)-$(VERSION) && mkdir -p $(DIST)/$(NAME)-$(VERSION)
	git ls-files -z | xargs -0 cp -P --parents -t $(DIST)/$(NAME)-$(VERSION)
	cd $(DIST)/$(NAME)-$(VERSION) && GOFLAGS=-mod=mod GOWORK=off $(GO) mod vendor
	tar --sort=name --mtime=@$(SOURCE_DATE_EPOCH) --owner=0 --group=0 --numeric-owner \
	  -C $(DIST) -cf - $(NAME)-$(VERSION) | gzip -9n >$(DIST)/$(NAME)-$(VERSION).tar.gz
	cp $(SPEC_SOURCES) $(DIST)/
	rm -rf $(DIST)/$(NAME)-$(VERSION)

# rpmbuild builds the same two packages as rpm, the rpm way. It writes
# $(DIST)/rpmbuild/RPMS/ARCH/*.rpm and $(DIST)/rpmbuild/SRPMS/*.src.rpm.
# --nodeps because Debian's rpm database is empty; drop it on Fedora/EL.
rpmbuild: deps dist
	rpmbuild -ba --nodeps \
	  --define "_topdir $(RPMBUILD_TOPDIR)" --define "_sourcedir $(abspath $(DIST))" \
	  --define "pkg_version $(VERSION)" --define "pkg_release $(RELEASE)" \
	  $(if $(CPUS),--define "qemu_cpus $(CPUS)") \
	  qemu-user-static-go.spec

# repo makes $(DIST) a dnf repository of the packages in it (make rpm
# writes them there). rpmbuild's copies of the same package stay out. With
# SIGN_KEY, it signs repodata/repomd.xml into repomd.xml.asc and exports
# the public key as $(DIST)/$(REPO_KEY), for the .repo file's gpgkey=. gpg
# works in a temporary home, so no keyring of the machine's is read or
# changed; its agent is stopped before the home goes.
repo: deps
	createrepo_c --update --excludes 'rpmbuild/*' $(DIST)
	rm -f $(DIST)/repodata/repomd.xml.asc
	@if [ -n "$(SIGN_KEY)" ]; then \
	  set -e; home=$$(mktemp -d); trap 'gpgconf --homedir "$$home" --kill gpg-agent 2>/dev/null; rm -rf "$$home"' EXIT; \
	  gpg() { command gpg --homedir "$$home" --batch --quiet --no-tty "$$@"; }; \
	  gpg --import $(abspath $(SIGN_KEY)) || { echo "make repo: importing SIGN_KEY=$(SIGN_KEY) failed" >&2; exit 1; }; \
	  printf '%s' "$${NFPM_RPM_PASSPHRASE:-$$NFPM_PASSPHRASE}" | gpg --pinentry-mode loopback --passphrase-fd 0 \
	    --armor --detach-sign --output $(DIST)/repodata/repomd.xml.asc $(DIST)/repodata/repomd.xml \
	    || { echo "make repo: signing $(DIST)/repodata/repomd.xml with SIGN_KEY=$(SIGN_KEY) failed (a protected key needs NFPM_RPM_PASSPHRASE)" >&2; exit 1; }; \
	  gpg --armor --export >$(DIST)/$(REPO_KEY); \
	  echo "signed $(DIST)/repodata/repomd.xml; public key $(DIST)/$(REPO_KEY)"; \
	fi

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l cmd pkg); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# fuzz runs each fuzz target for FUZZTIME; the corpus lives in testdata/.
FUZZ_TARGETS := ./pkg/binfmt:FuzzParse ./pkg/binfmt:FuzzParseLine ./pkg/binfmt:FuzzParseLive ./pkg/lifecycle:FuzzParseRecord \
	./pkg/lifecycle:FuzzParseManifests ./pkg/lifecycle:FuzzRecordRoundTrip ./pkg/lifecycle:FuzzParseNEVR ./pkg/lifecycle:FuzzParseOwners \
	./pkg/lifecycle:FuzzParseTxState ./pkg/lifecycle:FuzzParseHookOwners ./pkg/inspect:FuzzRead ./pkg/inspect:FuzzCpio ./pkg/inspect:FuzzResolveLinks ./pkg/binfmtctl:FuzzFlagSet \
	./pkg/internal/sandbox:FuzzMirrorFromSources ./pkg/binfmtctl:FuzzCatLines ./pkg/binfmt:FuzzDescribeELF \
	./pkg/assemble:FuzzParseTriggers ./pkg/rpmfile:FuzzMacroNames ./pkg/rpmfile:FuzzParseRequirement
fuzz:
	@for t in $(FUZZ_TARGETS); do \
	  pkg=$${t%%:*}; name=$${t##*:}; \
	  echo "fuzz $$name ($(FUZZTIME))"; \
	  $(GO) test $$pkg -run '^$$' -fuzz "^$$name$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 5s || exit 1; \
	done

unit:
	$(GO) test -count=1 -timeout 20m ./...

# load runs the register/unregister stress test for 1,000 rounds (about
# 2 minutes); go test runs 50.
load:
	LOAD_ROUNDS=1000 $(GO) test -count=1 -v -run '^TestLoad$$' -timeout 30m ./pkg/lifecycle

# e2e runs only the end-to-end suite (it is part of unit, and so of test).
e2e: deps
	$(GO) test -count=1 -v -timeout 20m ./pkg/e2e

# test-root builds the Debian sid test root (rpm 6.1, dnf5, systemd 262,
# qemu 11.1, rpmlint 2.8) if this machine has none yet: about a minute
# once, then a lookup. Tests build it on first use as well; doing it first
# keeps its time out of every test's and shows it on its own.
test-root: deps
	$(GO) test -count=1 -v -run '^TestSidStack$$' ./pkg/internal/sandbox

# test runs every test: vet, formatting, unit, real-kernel and real-dnf
# tests on both stacks, and a short fuzz run.
test: deps vet fmt-check test-root unit
	# A count, not a time: when a time limit ends while the engine is
	# minimising a new input, go test reports "context deadline exceeded"
	# and fails though nothing crashed.
	$(MAKE) fuzz FUZZTIME=3000x

BENCH_ROUNDS ?= 31
BENCH_FULL ?=
# The sections of docs/benchmarks.md, in order: each test appends its own.
BENCH_COUNT ?= 10
BENCHSTAT := golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da
BENCH_TESTS := TestBenchIntro TestRegistrationAgainstSystemdBinfmt TestBenchHooks TestBenchTriggers TestBenchBuild TestStatusWithFortyEntries

# bench measures binfmtctl against systemd-binfmt, the scriptlets against
# empty ones and the build against rpmbuild, prints each table and writes
# docs/benchmarks.md. BENCH_FULL=1 adds the builds that take over a minute
# each (about 10 minutes in all, 4 without).
bench: deps
	rm -f docs/benchmarks.md.tmp
	for t in $(BENCH_TESTS); do \
	  BENCH_REPORT=$(CURDIR)/docs/benchmarks.md.tmp BENCH_ROUNDS=$(BENCH_ROUNDS) BENCH_FULL=$(BENCH_FULL) \
	    $(GO) test -count=1 -timeout 60m -run "^$$t$$" -v ./pkg/bench || exit 1; \
	done
	{ printf '\n## In-process costs: go test -bench\n\nWhat `binfmtctl register` does for every /usr/lib/binfmt.d/qemu-*.conf before it writes to the kernel, measured in a running process: reading and parsing the files, and checking the interpreters (the C/O ownership walk, one checker for all, as one run does). `make bench-go` runs these and prints them through benchstat; `make bench-go BENCH_BASE=OLD.txt` compares with an earlier run'"'"'s dist/bench-go.txt.\n\n```\n'; \
	  $(MAKE) -s bench-go; printf '```\n'; } >>docs/benchmarks.md.tmp
	mv docs/benchmarks.md.tmp docs/benchmarks.md

# bench-go runs the in-process Go benchmarks BENCH_COUNT times into
# dist/bench-go.txt and summarises them with benchstat; BENCH_BASE=FILE,
# an earlier run's output, makes it an A/B comparison.
bench-go:
	mkdir -p $(DIST)
	$(GO) test -run '^$$' -bench . -benchmem -count $(BENCH_COUNT) ./pkg/binfmt >$(DIST)/bench-go.txt
	$(GO) run $(BENCHSTAT) $(if $(BENCH_BASE),old=$(BENCH_BASE) new=$(DIST)/bench-go.txt,$(DIST)/bench-go.txt)

clean:
	rm -rf $(DIST)
