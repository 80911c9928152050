# kvmstats - KVM binary statistics in shared memory.
#
#   make            libraries, kvmstatsd, kvmstats (into $(BUILD)/)
#   make run        install missing packages, build, publish a VM, show live stats
#   make test       install missing packages, build, run every test (sanitizers too)
#   make bench      benchmarks, each beside its baseline (bench/REPORT.md)
#   make bench-quick  the same, fewer samples, under a minute
#   make torture    the long torture run
#   make repeat     the multi-process, real-kernel and real-QEMU suites, REPEAT times
#   make check-qemu real QEMUs (7.2, and 10 from a cached trixie chroot) vs their QMP
#   make repeat-kvm the real-kernel suite in its QEMU guest, REPEAT times
#   make install    programs, libraries, headers, pkg-config, man pages, units
#                   (PREFIX=/usr/local, DESTDIR, BINDIR, LIBDIR, ...); uninstall
#   make deb        Debian packages into $(BUILD)/deb, checked with lintian
#   make man        the man pages, into $(BUILD)/man
#
# Variables: CC (gcc or clang), BUILD (output dir), SAN (address,undefined |
# thread), CPPFLAGS/CFLAGS/LDFLAGS (added to ours).

CC	?= cc
BUILD	?= build
SAN	?=
OPT	?= -O2

# The version, in this one place: libraries, kvmstatsd and kvmstats take it from here.
VERSION		:= 1.0.0
SO_MAJOR	:= 1
SO_VERSION	:= $(VERSION)

WARN	:= -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	   -Wpointer-arith -Wformat=2 -Wvla
KS_CFLAGS := -std=c11 -D_GNU_SOURCE -DKS_VERSION='"$(VERSION)"' $(OPT) -g -fPIC $(WARN) -pthread
KS_LDFLAGS := -pthread
ifneq ($(SAN),)
KS_CFLAGS += -fsanitize=$(SAN) -fno-omit-frame-pointer
KS_LDFLAGS += -fsanitize=$(SAN)
endif
ALL_CFLAGS  = $(KS_CFLAGS) $(LAYER_INC) $(CPPFLAGS) $(CFLAGS)
ALL_LDFLAGS = $(KS_LDFLAGS) $(LDFLAGS)

URCU_LIBS	:= -lurcu-qsbr -lurcu-common
CMOCKA_LIBS	:= -lcmocka

# Sources, one job per file, one folder per role (README.md, "Layout").
SHM_SRC		:= $(wildcard shm/*.c)
READER_SRC	:= $(wildcard reader/lib/*.c)
CLI_SRC		:= $(wildcard reader/cli/*.c)
EXPORTER_SRC	:= $(wildcard reader/exporter/*.c)
PUB_SRC		:= $(wildcard publisher/core/*.c publisher/sched/*.c publisher/statsfd/*.c \
		     publisher/sources/*.c)
VMS_SRC		:= $(wildcard publisher/vms/*.c)
QEMU_SRC	:= $(wildcard publisher/qemu/*.c)
DAEMON_SRC	:= $(wildcard publisher/daemon/*.c)
TEST_SRC	:= $(wildcard tests/test_*.c)
TESTLIB_SRC	:= $(wildcard tests/lib/*.c)
BENCH_SRC	:= $(wildcard bench/bench_*.c)
TOOL_SRC	:= $(wildcard tests/tools/*.c)
PRELOAD_SRC	:= $(wildcard publisher/preload/*.c)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

# Each layer sees its own headers and those of the layers below it, never
# one above: an upward #include fails to compile.  From the bottom:
#   shm (the ABI, shared by both sides) <- reader/lib <- reader/cli, reader/exporter
#   shm <- publisher/core <- publisher/sched (provider "sched") <- publisher/statsfd
#     <- publisher/sources <- publisher/preload
#   shm <- publisher/vms;  shm <- publisher/qemu (QEMU's names: QMP, -name)
#   publisher/daemon and publisher/preload see publisher/qemu; the daemon sees every layer
INC_SHM		:= -Iinclude -Ishm
INC_READER	:= $(INC_SHM) -Ireader/lib
INC_CLI		:= $(INC_SHM) -Ireader/cli
INC_EXPORTER	:= $(INC_SHM) -Ireader/exporter
INC_CORE	:= $(INC_SHM) -Ipublisher/core
INC_SCHED	:= $(INC_CORE) -Ipublisher/sched
INC_STATSFD	:= $(INC_SCHED) -Ipublisher/statsfd
INC_SOURCES	:= $(INC_STATSFD) -Ipublisher/sources
INC_PRELOAD	:= $(INC_SOURCES) -Ipublisher/qemu -Ipublisher/preload
INC_VMS		:= $(INC_SHM) -Ipublisher/vms
INC_QEMU	:= $(INC_SHM) -Ipublisher/qemu
INC_DAEMON	:= $(INC_SOURCES) -Ipublisher/vms -Ipublisher/qemu -Ipublisher/daemon
INC_TESTS	:= $(INC_SOURCES) -Ireader/lib -Ireader/cli -Ireader/exporter -Ipublisher/vms \
		   -Ipublisher/qemu -Ipublisher/daemon -Itests/lib
$(BUILD)/obj/shm/%.o:			LAYER_INC = $(INC_SHM)
$(BUILD)/obj/reader/lib/%.o:		LAYER_INC = $(INC_READER)
$(BUILD)/obj/reader/cli/%.o:		LAYER_INC = $(INC_CLI)
$(BUILD)/obj/reader/exporter/%.o:	LAYER_INC = $(INC_EXPORTER)
$(BUILD)/obj/publisher/core/%.o:	LAYER_INC = $(INC_CORE)
$(BUILD)/obj/publisher/sched/%.o:	LAYER_INC = $(INC_SCHED)
$(BUILD)/obj/publisher/statsfd/%.o:	LAYER_INC = $(INC_STATSFD)
$(BUILD)/obj/publisher/sources/%.o:	LAYER_INC = $(INC_SOURCES)
$(BUILD)/obj/publisher/preload/%.o:	LAYER_INC = $(INC_PRELOAD)
$(BUILD)/obj/publisher/vms/%.o:		LAYER_INC = $(INC_VMS)
$(BUILD)/obj/publisher/qemu/%.o:	LAYER_INC = $(INC_QEMU)
$(BUILD)/obj/publisher/daemon/%.o:	LAYER_INC = $(INC_DAEMON)
$(BUILD)/obj/tests/%.o:			LAYER_INC = $(INC_TESTS)
$(BUILD)/obj/bench/%.o:			LAYER_INC = $(INC_TESTS)

LIB_READER	:= $(BUILD)/libkvmstats.a
LIB_PUB		:= $(BUILD)/libkvmstats-publisher.a
# The VMs kvmstatsd runs itself: for the daemon, tests and benches, never
# in the publisher library (nor installed).
LIB_VMS		:= $(BUILD)/internal/libkvmstats-vms.a
# QEMU's own names for its VM and vCPUs (QMP, -name): kvmstatsd and the
# preload shim, not the publisher library, which takes labels from its caller.
LIB_QEMU	:= $(BUILD)/internal/libkvmstats-qemu.a
# kvmstats(1) less its main(), for the tests of its formatting.
LIB_CLI		:= $(BUILD)/internal/libkvmstats-cli.a
# kvmstats-exporter less its main(), for the tests of its exposition.
LIB_EXPORTER	:= $(BUILD)/internal/libkvmstats-exporter.a
MHD_LIBS	:= -lmicrohttpd
# jansson: QMP parsing (QEMU's replies for vCPU names; kvmstats qmp's commands).
JANSSON_LIBS	:= $(shell pkg-config --libs jansson 2>/dev/null || echo -ljansson)
SO_READER	:= $(BUILD)/libkvmstats.so.$(SO_VERSION)
SO_PUB		:= $(BUILD)/libkvmstats-publisher.so.$(SO_VERSION)
KVMSTATSD	:= $(BUILD)/kvmstatsd
KVMSTATS	:= $(BUILD)/kvmstats
KVMSTATS_EXPORTER := $(BUILD)/kvmstats-exporter
TESTS		:= $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRC))
BENCHES		:= $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))
TEST_TOOLS	:= $(patsubst tests/tools/%.c,$(BUILD)/tests/tools/%,$(TOOL_SRC))
PRELOAD		:= $(if $(PRELOAD_SRC),$(BUILD)/libkvmstats-preload.so)

.PHONY: all deps run test unit-tests check check-asan check-tsan check-valgrind \
	check-clang check-cli check-api check-dist check-deb deb abi-baseline torture bench \
	bench-quick clean
.DEFAULT_GOAL := all

all: $(LIB_READER) $(LIB_PUB) $(SO_READER) $(SO_PUB) $(KVMSTATSD) $(KVMSTATS) \
	$(KVMSTATS_EXPORTER) $(PRELOAD)

# Quiet by default; V=1 shows every command.
ifeq ($(V),1)
Q :=
say =
else
Q := @
say = @printf '  %-7s %s\n' $(1) $(2);
endif

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(call say,CC,$@)$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

$(LIB_READER): $(call obj,$(SHM_SRC) $(READER_SRC))
	@rm -f $@
	$(call say,AR,$@)ar rcs $@ $^

$(LIB_PUB): $(call obj,$(PUB_SRC))
	@rm -f $@
	$(call say,AR,$@)ar rcs $@ $^

$(LIB_VMS): $(call obj,$(VMS_SRC))
	@mkdir -p $(dir $@)
	@rm -f $@
	$(call say,AR,$@)ar rcs $@ $^

$(LIB_QEMU): $(call obj,$(QEMU_SRC))
	@mkdir -p $(dir $@)
	@rm -f $@
	$(call say,AR,$@)ar rcs $@ $^

$(LIB_CLI): $(call obj,$(filter-out reader/cli/main.c,$(CLI_SRC)))
	@mkdir -p $(dir $@)
	@rm -f $@
	$(call say,AR,$@)ar rcs $@ $^

$(LIB_EXPORTER): $(call obj,$(filter-out reader/exporter/main.c,$(EXPORTER_SRC)))
	@mkdir -p $(dir $@)
	@rm -f $@
	$(call say,AR,$@)ar rcs $@ $^

# The shared libraries export their public API only (the version scripts;
# tests/check-exports.sh checks it); each carries its own hidden copy of
# the shm/ helpers, so neither needs the other's internals.
# --no-undefined proves each library names every library it needs; it is
# left out of sanitizer builds, where clang leaves the sanitizer runtime
# to the executable and a shared object's __tsan_*/__asan_* references
# are undefined by design.
SO_LDFLAGS = -shared -Wl,-z,relro -Wl,-z,now
ifeq ($(SAN),)
SO_LDFLAGS += -Wl,--no-undefined
endif

$(SO_READER): $(call obj,$(SHM_SRC) $(READER_SRC)) reader/lib/libkvmstats.map
	$(call say,LD,$@)$(CC) $(SO_LDFLAGS) -Wl,-soname,libkvmstats.so.$(SO_MAJOR) \
		-Wl,--version-script=reader/lib/libkvmstats.map -o $@ \
		$(call obj,$(SHM_SRC) $(READER_SRC)) $(ALL_LDFLAGS)
	$(Q)ln -sf $(notdir $@) $(BUILD)/libkvmstats.so.$(SO_MAJOR)
	$(Q)ln -sf $(notdir $@) $(BUILD)/libkvmstats.so

$(SO_PUB): $(call obj,$(SHM_SRC) $(PUB_SRC)) publisher/libkvmstats-publisher.map
	$(call say,LD,$@)$(CC) $(SO_LDFLAGS) -Wl,-soname,libkvmstats-publisher.so.$(SO_MAJOR) \
		-Wl,--version-script=publisher/libkvmstats-publisher.map -o $@ \
		$(call obj,$(SHM_SRC) $(PUB_SRC)) $(URCU_LIBS) $(ALL_LDFLAGS)
	$(Q)ln -sf $(notdir $@) $(BUILD)/libkvmstats-publisher.so.$(SO_MAJOR)
	$(Q)ln -sf $(notdir $@) $(BUILD)/libkvmstats-publisher.so

$(KVMSTATSD): $(call obj,$(DAEMON_SRC)) $(LIB_VMS) $(LIB_QEMU) $(LIB_PUB) $(LIB_READER)
	$(call say,LD,$@)$(CC) -o $@ $^ $(URCU_LIBS) $(JANSSON_LIBS) $(ALL_LDFLAGS)

# ncursesw: kvmstats top's live view.
CURSES_LIBS	:= $(shell pkg-config --libs ncursesw 2>/dev/null || echo -lncursesw -ltinfo)
$(KVMSTATS): $(call obj,$(CLI_SRC)) $(LIB_READER)
	$(call say,LD,$@)$(CC) -o $@ $^ $(CURSES_LIBS) $(JANSSON_LIBS) $(ALL_LDFLAGS) -lm

# A reader like the CLI: the reader library and libmicrohttpd, nothing else.
$(KVMSTATS_EXPORTER): $(call obj,reader/exporter/main.c) $(LIB_EXPORTER) $(LIB_READER)
	$(call say,LD,$@)$(CC) -o $@ $^ $(MHD_LIBS) $(ALL_LDFLAGS) -lm

$(BUILD)/tests/%: $(call obj,tests/%.c $(TESTLIB_SRC)) $(LIB_CLI) $(LIB_EXPORTER) $(LIB_VMS) \
		$(LIB_QEMU) $(LIB_PUB) $(LIB_READER)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)$(CC) -o $@ $(call obj,tests/$*.c $(TESTLIB_SRC)) $(LIB_CLI) $(LIB_EXPORTER) \
		$(LIB_VMS) $(LIB_QEMU) $(LIB_PUB) $(LIB_READER) \
		$(CMOCKA_LIBS) $(URCU_LIBS) $(MHD_LIBS) $(CURSES_LIBS) $(JANSSON_LIBS) $(ALL_LDFLAGS) -lm

# The LD_PRELOAD shim carries its own copy of the publisher (a VMM needs no
# other kvmstats library) and exports nothing but the functions it wraps.
$(PRELOAD): $(call obj,$(PRELOAD_SRC)) $(LIB_QEMU) $(LIB_PUB) $(LIB_READER) \
		publisher/preload/exports.map
	$(call say,LD,$@)$(CC) -shared -o $@ $(call obj,$(PRELOAD_SRC)) $(LIB_QEMU) $(LIB_PUB) \
		$(LIB_READER) -Wl,--version-script=publisher/preload/exports.map $(URCU_LIBS) \
		$(JANSSON_LIBS) -ldl $(ALL_LDFLAGS)

# Helper programs of the tests (fixtures, fake VMMs): same libraries, no cmocka.
$(BUILD)/tests/tools/%: $(call obj,tests/tools/%.c) $(LIB_VMS) $(LIB_PUB) $(LIB_READER)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)$(CC) -o $@ $^ $(URCU_LIBS) $(ALL_LDFLAGS) -lm

# Benchmarks: the tests' synthetic VM (checked values) and, when liburing
# is installed (bench/install-deps.sh), the batched-read variant.  Every
# tests/lib/*.c is linked in, and some are cmocka helpers: hence -lcmocka.
BENCH_URING := $(shell pkg-config --exists liburing 2>/dev/null && echo -luring)
$(BUILD)/obj/bench/%.o: KS_CFLAGS += $(if $(BENCH_URING),-DKS_BENCH_URING)
$(BUILD)/bench/%: $(call obj,bench/%.c $(TESTLIB_SRC)) $(LIB_EXPORTER) $(LIB_VMS) $(LIB_PUB) \
		$(LIB_READER)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)$(CC) -o $@ $^ $(CMOCKA_LIBS) $(URCU_LIBS) $(MHD_LIBS) $(BENCH_URING) \
		$(ALL_LDFLAGS) -lm

# ---- installing what the build and the tests need (Debian 12) ----------
deps:
	@sh tools/install-deps.sh

# ---- the main job ------------------------------------------------------
run: deps
	@$(MAKE) --no-print-directory all
	@sh tools/run-demo.sh $(BUILD)

# ---- tests -------------------------------------------------------------
# unit-tests: every cmocka program in tests/, then the CLI golden tests.
unit-tests: all $(TESTS) $(TEST_TOOLS)
	@sh tests/run-unit.sh $(BUILD)

check-cli: all $(TEST_TOOLS)
	@sh tests/cli/run.sh $(BUILD)

check: unit-tests

check-clang:
	@$(MAKE) --no-print-directory CC=clang BUILD=build/clang unit-tests
	@$(MAKE) --no-print-directory CC=clang BUILD=build/clang $(patsubst $(BUILD)/%,build/clang/%,$(BENCHES))

# Sanitizers slow every read 3-20x: the torture count shrinks, its checks do not.
check-asan:
	@KVMSTATS_TORTURE_READS=$${KVMSTATS_TORTURE_READS:-2000000} \
	$(MAKE) --no-print-directory BUILD=build/asan SAN=address,undefined OPT=-O1 unit-tests

check-tsan:
	@KVMSTATS_TORTURE_READS=$${KVMSTATS_TORTURE_READS:-400000} \
	TSAN_OPTIONS="suppressions=$(CURDIR)/tests/tsan.supp $${TSAN_OPTIONS:-}" \
	$(MAKE) --no-print-directory CC=clang BUILD=build/tsan SAN=thread OPT=-O1 unit-tests

check-valgrind: all $(TESTS) $(TEST_TOOLS)
	@sh tests/run-unit.sh $(BUILD) valgrind

# The libraries' public face: exactly the declared symbols, the ABI of the
# checked-in baseline, headers that compile alone in C99, C11 and C++.
check-api: all
	@sh tests/check-exports.sh $(BUILD)
	@sh tests/check-abi.sh $(BUILD)
	@sh tests/check-headers.sh gcc g++
	@sh tests/check-headers.sh clang clang++

# After an intended ABI change: the new baseline, to commit with it.
abi-baseline: all
	@sh tests/check-abi.sh $(BUILD) update

# What a distribution installs: man pages, make install/uninstall, the unit,
# pkg-config, programs built outside the tree (tests/check-dist.sh).
check-dist: all man
	@sh tests/check-dist.sh $(BUILD)

# The Debian packages (tools/debian/), then, where we are root, installed,
# used and purged again (tests/check-deb.sh).
deb: deps
	@sh tools/make-deb.sh $(BUILD) $(VERSION)

check-deb: deb
	@sh tests/check-deb.sh $(BUILD) $(VERSION)

test: deps
	@$(MAKE) --no-print-directory all $(BENCHES)
	@$(MAKE) --no-print-directory unit-tests
	@$(MAKE) --no-print-directory check-api
	@$(MAKE) --no-print-directory check-dist
	@$(MAKE) --no-print-directory check-clang
	@$(MAKE) --no-print-directory check-asan
	@$(MAKE) --no-print-directory check-tsan
	@$(MAKE) --no-print-directory check-valgrind
	@$(MAKE) --no-print-directory fuzz-smoke
	@$(MAKE) --no-print-directory check-deb
	@$(MAKE) --no-print-directory test-kvm
	@$(MAKE) --no-print-directory check-qemu
	@# Each line above stops make on a failure: reaching here means all eleven passed.
	@echo "make test: gcc, API and ABI, install, clang, ASan+UBSan, TSan, valgrind, fuzz smoke,"
	@echo "           Debian packages$(if $(filter 0,$(shell id -u)),, (skipped: not root)), real-kernel"
	@echo "           and real-QEMU suites"
	@echo "suites: 11 passed, 0 failed"

# Real-kernel tests (tests/test_real_*) against the KVM of a stock Debian
# kernel booted under QEMU TCG (nested AMD SVM): works with or without a
# /dev/kvm on this host.  test-kvm-host runs them on this host's own KVM.
.PHONY: test-kvm test-kvm-host
test-kvm: deps
	@$(MAKE) --no-print-directory all $(TESTS) $(TEST_TOOLS)
	@sh tools/kvm-guest/run.sh $(BUILD)

test-kvm-host: all $(TESTS) $(TEST_TOOLS)
	@KVMSTATS_REQUIRE_KVM=1 sh tests/run-kvm.sh $(BUILD)

# Real, unmodified QEMUs (tests/qemu/test_qemu.py): the host's QEMU 7.2 and
# QEMU 10 from a Debian trixie chroot made once and cached by
# tools/qemu/prepare-trixie.sh, each way in (attach, shim inprocess and
# socket) compared with that QEMU's own QMP on the same VM.  They run with
# -accel kvm on this host's /dev/kvm; without one the suite says SKIP and why.
# binutils: the test firmware (tests/qemu/halt-fw.S).
.PHONY: check-qemu
check-qemu: deps
	@$(MAKE) --no-print-directory all
	@sh tools/install-deps.sh --tag check-qemu --optional "the QEMU 7.2 checks SKIP" \
		qemu-system-x86 binutils
	@/usr/bin/python3 tests/qemu/test_qemu.py $(BUILD)

# ---- fuzzing: clang libFuzzer + ASan + UBSan (tests/fuzz/) ---------------
# The libraries are rebuilt in build/fuzz with the same instrumentation as
# the harnesses (fuzzer-no-link: coverage, but libFuzzer's main only in the
# harnesses).  Seeds come from the project's own builders (tests/fuzz/seeds.c)
# at build time.  fuzz: FUZZ_SECONDS per harness; fuzz-smoke: 10 s each.
.PHONY: fuzz fuzz-smoke fuzz-build
FUZZ_BUILD	:= build/fuzz
FUZZ_SECONDS	?= 60
FUZZ_NAMES	:= $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))

$(BUILD)/fuzz_%: $(call obj,tests/fuzz/fuzz_%.c) $(LIB_EXPORTER) $(LIB_VMS) $(LIB_PUB) $(LIB_READER)
	$(call say,LD,$@)$(CC) -fsanitize=fuzzer -o $@ $^ $(URCU_LIBS) $(MHD_LIBS) $(ALL_LDFLAGS)

# kvmstats qmp's dispatcher (LIB_CLI, jansson), answering from the tests' synthetic VM.
$(BUILD)/fuzz_qmp: $(call obj,tests/fuzz/fuzz_qmp.c tests/lib/synth_vm.c) $(LIB_CLI) $(LIB_PUB) \
		$(LIB_READER)
	$(call say,LD,$@)$(CC) -fsanitize=fuzzer -o $@ $^ $(URCU_LIBS) $(JANSSON_LIBS) $(ALL_LDFLAGS) -lm

# The -name parser (LIB_QEMU) on any command line.
$(BUILD)/fuzz_qemu_name: $(call obj,tests/fuzz/fuzz_qemu_name.c) $(LIB_QEMU) $(LIB_READER)
	$(call say,LD,$@)$(CC) -fsanitize=fuzzer -o $@ $^ $(JANSSON_LIBS) $(ALL_LDFLAGS)

$(BUILD)/fuzz-seeds: $(call obj,tests/fuzz/seeds.c) $(LIB_VMS) $(LIB_PUB) $(LIB_READER)
	$(call say,LD,$@)$(CC) -o $@ $^ $(URCU_LIBS) $(ALL_LDFLAGS)

fuzz-build: deps
	@$(MAKE) --no-print-directory CC=clang BUILD=$(FUZZ_BUILD) OPT=-O1 \
		SAN=fuzzer-no-link,address,undefined \
		$(addprefix $(FUZZ_BUILD)/,$(addprefix fuzz_,$(FUZZ_NAMES)) fuzz-seeds)
	@rm -rf $(FUZZ_BUILD)/corpus/seeds && mkdir -p $(FUZZ_BUILD)/corpus
	@$(FUZZ_BUILD)/fuzz-seeds $(FUZZ_BUILD)/corpus/seeds

fuzz: fuzz-build
	@sh tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_NAMES)

fuzz-smoke: fuzz-build
	@sh tests/fuzz/run.sh $(FUZZ_BUILD) 10 $(FUZZ_NAMES)

torture: all $(BUILD)/tests/test_torture
	KVMSTATS_TORTURE_READS=200000000 $(BUILD)/tests/test_torture

# Flakiness hunts: a test that can fail by chance fails here, not in CI.
# REPEAT rounds (default 20) of every suite that forks, uses sockets or
# races a publisher (tests/repeat.sh); REPEAT_SUITES picks some.
REPEAT		?= 20
.PHONY: repeat repeat-kvm
repeat: all $(TESTS) $(TEST_TOOLS)
	@sh tests/repeat.sh $(BUILD) $(REPEAT) $(REPEAT_SUITES)

repeat-kvm: deps
	@$(MAKE) --no-print-directory all $(TESTS) $(TEST_TOOLS)
	@sh tests/repeat.sh $(BUILD) $(REPEAT) kvm

bench: all
	@sh bench/install-deps.sh
	@$(MAKE) --no-print-directory $(BENCHES)
	@sh bench/run.sh $(BUILD)

# The same measurements, fewer samples: under a minute.
bench-quick: all $(BENCHES)
	@BENCH_QUICK=1 sh bench/run.sh $(BUILD)

# ---- installing: make install / make uninstall --------------------------
# The usual variables, DESTDIR for staging.  Under /usr the libraries go to
# the multiarch directory (lib/x86_64-linux-gnu), as Debian has them.
PREFIX		?= /usr/local
MULTIARCH	:= $(shell $(CC) -print-multiarch 2>/dev/null)
ifeq ($(PREFIX)$(if $(MULTIARCH),,-),/usr)
LIBDIR		?= $(PREFIX)/lib/$(MULTIARCH)
else
LIBDIR		?= $(PREFIX)/lib
endif
BINDIR		?= $(PREFIX)/bin
SBINDIR		?= $(PREFIX)/sbin
INCLUDEDIR	?= $(PREFIX)/include
DATADIR		?= $(PREFIX)/share
MANDIR		?= $(DATADIR)/man
DOCDIR		?= $(DATADIR)/doc/kvmstats
PKGCONFIGDIR	?= $(LIBDIR)/pkgconfig
PRELOADDIR	?= $(LIBDIR)/kvmstats
SYSCONFDIR	?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
# Under /usr, where this systemd wants them (Debian 12: units in /lib).
systemd_dir = $(or $(if $(filter /usr,$(PREFIX)),$(shell pkg-config --variable=$(1) systemd \
		2>/dev/null)),$(PREFIX)/lib/$(2))
UNITDIR		?= $(call systemd_dir,systemdsystemunitdir,systemd/system)
SYSUSERSDIR	?= $(call systemd_dir,sysusersdir,sysusers.d)
TMPFILESDIR	?= $(call systemd_dir,tmpfilesdir,tmpfiles.d)

# The pages' date: the last commit's (or SOURCE_DATE_EPOCH's), so a build is reproducible.
MAN_DATE	:= $(shell date -u -d @$${SOURCE_DATE_EPOCH:-$$(git log -1 --format=%ct 2>/dev/null || date +%s)} +%F)
MAN_SRC		:= $(wildcard docs/man/*.in)
MANPAGES	:= $(patsubst docs/man/%.in,$(BUILD)/man/%,$(MAN_SRC))
PUBLIC_HEADERS	:= $(wildcard include/kvmstats/*.h)
DOCS		:= README.md docs/ABI.md docs/INTAKE.md docs/PRELOAD.md

# Fill in what only the installation knows.
subst = sed -e 's|@VERSION@|$(VERSION)|g' -e 's|@DATE@|$(MAN_DATE)|g' \
	-e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
	-e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@BINDIR@|$(BINDIR)|g' \
	-e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' -e 's|@PRELOADDIR@|$(PRELOADDIR)|g'

man: $(MANPAGES)
$(BUILD)/man/%: docs/man/%.in Makefile
	@mkdir -p $(dir $@)
	$(call say,GEN,$@)$(subst) $< >$@

.PHONY: man install uninstall
install: all man
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SBINDIR) $(DESTDIR)$(LIBDIR) \
		$(DESTDIR)$(PRELOADDIR) $(DESTDIR)$(INCLUDEDIR)/kvmstats $(DESTDIR)$(PKGCONFIGDIR) \
		$(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man3 $(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(TMPFILESDIR) \
		$(DESTDIR)$(SYSCONFDIR)/default $(DESTDIR)$(DOCDIR)
	install -m 0755 $(KVMSTATS) $(DESTDIR)$(BINDIR)/kvmstats
	install -m 0755 $(KVMSTATS_EXPORTER) $(DESTDIR)$(BINDIR)/kvmstats-exporter
	install -m 0755 $(KVMSTATSD) $(DESTDIR)$(SBINDIR)/kvmstatsd
	install -m 0644 $(SO_READER) $(SO_PUB) $(LIB_READER) $(LIB_PUB) $(DESTDIR)$(LIBDIR)/
	ln -sf $(notdir $(SO_READER)) $(DESTDIR)$(LIBDIR)/libkvmstats.so.$(SO_MAJOR)
	ln -sf libkvmstats.so.$(SO_MAJOR) $(DESTDIR)$(LIBDIR)/libkvmstats.so
	ln -sf $(notdir $(SO_PUB)) $(DESTDIR)$(LIBDIR)/libkvmstats-publisher.so.$(SO_MAJOR)
	ln -sf libkvmstats-publisher.so.$(SO_MAJOR) $(DESTDIR)$(LIBDIR)/libkvmstats-publisher.so
	install -m 0644 $(PRELOAD) $(DESTDIR)$(PRELOADDIR)/
	install -m 0644 $(PUBLIC_HEADERS) $(DESTDIR)$(INCLUDEDIR)/kvmstats/
	$(subst) reader/lib/kvmstats.pc.in >$(DESTDIR)$(PKGCONFIGDIR)/kvmstats.pc
	$(subst) publisher/kvmstats-publisher.pc.in >$(DESTDIR)$(PKGCONFIGDIR)/kvmstats-publisher.pc
	install -m 0644 $(BUILD)/man/kvmstats.1 $(BUILD)/man/kvmstats-exporter.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 0644 $(BUILD)/man/libkvmstats.3 $(BUILD)/man/libkvmstats-publisher.3 \
		$(DESTDIR)$(MANDIR)/man3/
	install -m 0644 $(BUILD)/man/kvmstatsd.8 $(BUILD)/man/kvmstats-preload.8 \
		$(DESTDIR)$(MANDIR)/man8/
	$(subst) publisher/daemon/kvmstatsd.service.in >$(DESTDIR)$(UNITDIR)/kvmstatsd.service
	$(subst) reader/exporter/kvmstats-exporter.service.in \
		>$(DESTDIR)$(UNITDIR)/kvmstats-exporter.service
	install -m 0644 publisher/daemon/kvmstats.sysusers $(DESTDIR)$(SYSUSERSDIR)/kvmstats.conf
	install -m 0644 publisher/daemon/kvmstats.tmpfiles $(DESTDIR)$(TMPFILESDIR)/kvmstats.conf
	install -m 0644 publisher/daemon/kvmstatsd.default $(DESTDIR)$(SYSCONFDIR)/default/kvmstatsd
	install -m 0644 reader/exporter/kvmstats-exporter.default \
		$(DESTDIR)$(SYSCONFDIR)/default/kvmstats-exporter
	install -m 0644 $(DOCS) $(DESTDIR)$(DOCDIR)/

# Exactly what install put there (a changed configuration file too: it came from us).
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/kvmstats $(DESTDIR)$(BINDIR)/kvmstats-exporter \
		$(DESTDIR)$(SBINDIR)/kvmstatsd
	rm -f $(addprefix $(DESTDIR)$(LIBDIR)/,$(notdir $(SO_READER) $(SO_PUB) $(LIB_READER) \
		$(LIB_PUB)) libkvmstats.so.$(SO_MAJOR) libkvmstats.so \
		libkvmstats-publisher.so.$(SO_MAJOR) libkvmstats-publisher.so)
	rm -f $(DESTDIR)$(PRELOADDIR)/$(notdir $(PRELOAD))
	-rmdir $(DESTDIR)$(PRELOADDIR)
	rm -f $(addprefix $(DESTDIR)$(INCLUDEDIR)/,$(PUBLIC_HEADERS:include/%=%))
	-rmdir $(DESTDIR)$(INCLUDEDIR)/kvmstats
	rm -f $(DESTDIR)$(PKGCONFIGDIR)/kvmstats.pc $(DESTDIR)$(PKGCONFIGDIR)/kvmstats-publisher.pc
	rm -f $(DESTDIR)$(MANDIR)/man1/kvmstats.1 $(DESTDIR)$(MANDIR)/man1/kvmstats-exporter.1 \
		$(DESTDIR)$(MANDIR)/man3/libkvmstats.3 \
		$(DESTDIR)$(MANDIR)/man3/libkvmstats-publisher.3 \
		$(DESTDIR)$(MANDIR)/man8/kvmstatsd.8 $(DESTDIR)$(MANDIR)/man8/kvmstats-preload.8
	rm -f $(DESTDIR)$(UNITDIR)/kvmstatsd.service $(DESTDIR)$(UNITDIR)/kvmstats-exporter.service \
		$(DESTDIR)$(SYSUSERSDIR)/kvmstats.conf $(DESTDIR)$(TMPFILESDIR)/kvmstats.conf \
		$(DESTDIR)$(SYSCONFDIR)/default/kvmstatsd $(DESTDIR)$(SYSCONFDIR)/default/kvmstats-exporter
	rm -f $(addprefix $(DESTDIR)$(DOCDIR)/,$(notdir $(DOCS)))
	-rmdir $(DESTDIR)$(DOCDIR)

clean:
	rm -rf build

# Keep objects made by pattern rules (tests, benchmarks) between runs.
.SECONDARY:
