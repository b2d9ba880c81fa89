# postie — build, test and measure.
#
#   make                    host build (static musl) into build/host/postie
#   make TARGET=mips_24kc   cross build with toolchain/mips_24kc.mk
#   make BOARD=lanbox       board/lanbox/defconfig with the toolchain it names
#   make menuconfig|defconfig|allnoconfig|allyesconfig|randconfig|olddefconfig
#   make run | check | check-cross | man | install | bench | size | fuzz | clean
#
# The configuration used is, in order: CONFIG_SRC=FILE, the board's
# defconfig, ./.config, or the Kconfig defaults. It is completed into
# $(O)/.config with autoconf.h (bools as 0/1) and config.mk (obj-$(CONFIG_X)).

SHELL := /bin/bash
PYTHON := /usr/bin/python3
TARGET ?= host

ifneq ($(BOARD),)
include board/$(BOARD)/board.mk
TARGET := $(BOARD_TARGET)
O ?= build/board-$(BOARD)
CONFIG_SRC ?= board/$(BOARD)/defconfig
endif
O ?= build/$(TARGET)
ifeq ($(CONFIG_SRC),)
CONFIG_SRC := $(if $(wildcard .config),.config,-)
endif

include toolchain/$(TARGET).mk

OPT ?= -Os
STATIC ?= -static
WARN := -Wall -Wextra -Werror -Wundef -Wshadow -Wstrict-prototypes \
	-Wmissing-prototypes -Wpointer-arith -Wvla -Wformat=2
BASE_CFLAGS := -std=c11 $(OPT) $(WARN) -D_GNU_SOURCE \
	-ffunction-sections -fdata-sections -fno-asynchronous-unwind-tables \
	-fno-strict-aliasing -I$(O)/include -Isrc -include autoconf.h
# Link-time optimisation: `make LTO=-flto=auto`. Measured on mips_24kc
# (2026-12-05): defconfig -8.2 KB, the alerts board -7.0 KB (about -2.3%,
# postie's objects still MIPS16); x86_64: +16 bytes. Off by default: the
# link map then names LTO partitions instead of postie's modules, which
# takes `make size`'s per-module table away. Not in toolchain/<t>.mk,
# whose ARCH_CFLAGS also build musl and BearSSL.
LTO ?=
ALL_CFLAGS = $(BASE_CFLAGS) $(ARCH_CFLAGS) $(LTO) $(OBJ_CFLAGS) $(EXTRA_CFLAGS)
ALL_LDFLAGS = $(STATIC) -Wl,--gc-sections -Wl,-z,max-page-size=4096 \
	$(if $(filter -static,$(STATIC)),-no-pie) $(ARCH_LDFLAGS) $(EXTRA_LDFLAGS)

LIBS :=
-include $(O)/config.mk

# Sources: the core is always in; features are whole files.
obj-y := main.o cli.o status.o core/loop.o core/conn.o core/log.o core/conf.o core/util.o core/buf.o core/b64.o \
	core/fdio.o core/net.o proto/address.o proto/smtp_data.o store/mbox.o store/delivery.o \
	store/spool.o store/users.o
obj-$(CONFIG_SMTP_SERVER) += proto/smtp_in.o proto/session.o
obj-$(CONFIG_ALIASES) += store/aliases.o
obj-$(CONFIG_TLS) += tls/tls_bearssl.o tls/tls_errors.o
obj-$(CONFIG_AUTH) += proto/auth.o proto/sasl.o store/passwd.o
obj-$(CONFIG_MAILBOX_INDEX) += store/index.o
obj-$(CONFIG_POP3) += proto/pop3.o proto/session.o
obj-$(CONFIG_IMAP) += proto/imap.o proto/session.o proto/imap_append.o proto/imap_fetch.o proto/imap_mailbox.o proto/imap_selected.o proto/imap_parse.o proto/imap_search.o proto/mimedec.o proto/mime.o store/folders.o
obj-$(CONFIG_RELAY) += store/queue.o store/qstate.o store/notice.o store/maildrop.o proto/smtp_out.o proto/mime7.o \
	relay/runner.o relay/bounce.o
obj-$(CONFIG_SMARTHOST_AUTH) += proto/sasl.o
obj-$(CONFIG_DNS) += dns/dns_udns.o
obj-$(CONFIG_SENDMAIL) += sendmail.o
# Small replacements for the libc functions postie uses (musl targets only).
obj-$(LIBC_SMALL) += core/libc_small.o

# BearSSL and udns come from toolchain/deps.sh, built per target.
DEPS_TARGET ?= $(TARGET)
DEPS_DIR := build/$(DEPS_TARGET)/deps
NEED_DEPS := $(CONFIG_TLS)$(CONFIG_DNS)
ifneq ($(NEED_DEPS),)
BASE_CFLAGS += -isystem $(DEPS_DIR)/include
LIBS += -L$(DEPS_DIR)/lib
endif
ifeq ($(CONFIG_TLS),y)
LIBS += -lbearssl
endif
ifeq ($(CONFIG_DNS),y)
LIBS += -ludns
endif

# sort: a file two options need (proto/sasl.o) is linked once.
OBJS := $(addprefix $(O)/obj/,$(sort $(obj-y)))
LIB_OBJS := $(filter-out $(O)/obj/main.o $(O)/obj/cli.o $(O)/obj/status.o,$(OBJS))

.PHONY: all run check check-cross man install install-systemd bench size fuzz clean distclean deps \
	menuconfig defconfig allnoconfig allyesconfig randconfig olddefconfig \
	savedefconfig unit

all: $(O)/postie

# --- configuration ----------------------------------------------------
KCONFIG_FILES := Kconfig
$(O)/config.mk $(O)/include/autoconf.h: $(KCONFIG_FILES) $(filter-out -,$(CONFIG_SRC)) toolchain/kconfig.py | host-tools
	@mkdir -p $(O)
	@$(PYTHON) toolchain/kconfig.py Kconfig $(CONFIG_SRC) $(O)

.PHONY: host-tools
host-tools:
	@$(PYTHON) -c 'import kconfiglib' 2>/dev/null || tests/install-deps.sh build

menuconfig: host-tools
	KCONFIG_CONFIG=.config $(PYTHON) -m menuconfig Kconfig
defconfig: host-tools
	KCONFIG_CONFIG=.config $(PYTHON) -m alldefconfig Kconfig
allnoconfig allyesconfig randconfig olddefconfig savedefconfig: host-tools
	KCONFIG_CONFIG=.config $(PYTHON) -m $@ Kconfig

# --- build ------------------------------------------------------------
# Everything is rebuilt when the compiler or its flags change (a toolchain
# file edited, EXTRA_CFLAGS given): objects built for another link, say
# non-PIE ones for a static PIE, must not be mixed in. DEPS_CFLAGS (toolchain/<t>.mk,
# the libraries' own flags) is in: new libraries are linked anew.
BUILD_FLAGS = $(CC) $(ALL_CFLAGS) $(DEPS_CFLAGS) : $(ALL_LDFLAGS) $(LD_START) $(LD_END) $(LIBS)
$(O)/flags: FORCE
	@mkdir -p $(O)
	@echo '$(BUILD_FLAGS)' | cmp -s - $@ || echo '$(BUILD_FLAGS)' >$@
.PHONY: FORCE
FORCE:

$(O)/obj/%.o: src/%.c $(O)/include/autoconf.h $(O)/flags | toolchain-ready
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

-include $(OBJS:.o=.d)

.PHONY: toolchain-ready
toolchain-ready:
	@toolchain/install-deps.sh $(TARGET)
	@$(if $(filter $(TARGET)_%,$(DEPS_TARGET)),toolchain/deps.sh $(TARGET) &&) \
		toolchain/deps.sh $(DEPS_TARGET)

# The libraries are prerequisites of every link: toolchain-ready rebuilds
# them (musl too, where deps.sh builds it) when toolchain/deps.sh or a
# toolchain file changes (say the BearSSL members
# toolchain/bearssl_mips16.mk names) and then rewrites deps/.stamp; a
# binary is linked anew when a stamp is newer, not at every make.
ifneq ($(EXTERNAL_TOOLCHAIN),yes)
DEPS_STAMPS := $(DEPS_DIR)/.stamp \
	$(if $(filter $(TARGET)_%,$(DEPS_TARGET)),build/$(TARGET)/deps/.stamp)
$(DEPS_STAMPS): toolchain-ready ;
endif

$(O)/postie.unstripped: $(OBJS) $(O)/flags $(DEPS_STAMPS)
	$(CC) $(ALL_CFLAGS) -o $@ $(LD_START) $(OBJS) $(ALL_LDFLAGS) -Wl,-Map,$(O)/postie.map $(LIBS) $(LD_END)

$(O)/postie: $(O)/postie.unstripped
	$(if $(STATIC),$(STRIP) -o $@ $<,cp $< $@)

# --- tests ------------------------------------------------------------
UNIT_SRCS := $(wildcard tests/unit/*.c)
ifneq ($(CONFIG_AUTH),y)
UNIT_SRCS := $(filter-out tests/unit/test_auth.c,$(UNIT_SRCS))
endif
ifneq ($(CONFIG_MAILBOX_INDEX),y)
UNIT_SRCS := $(filter-out tests/unit/test_index.c,$(UNIT_SRCS))
endif
ifneq ($(CONFIG_RELAY),y)
UNIT_SRCS := $(filter-out tests/unit/test_relay_parts.c tests/unit/test_mime7.c,$(UNIT_SRCS))
endif
ifneq ($(CONFIG_IMAP),y)
UNIT_SRCS := $(filter-out tests/unit/test_imap.c tests/unit/test_search.c,$(UNIT_SRCS))
endif
ifneq ($(LIBC_SMALL),y)
UNIT_SRCS := $(filter-out tests/unit/test_libc_small.c,$(UNIT_SRCS))
endif
$(O)/tests/unit: $(UNIT_SRCS) $(LIB_OBJS) tests/unit/unit.h $(DEPS_STAMPS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Wno-missing-prototypes -Itests/unit -o $@ $(LD_START) $(UNIT_SRCS) $(LIB_OBJS) $(ALL_LDFLAGS) $(LIBS) $(LD_END)

# The DNS adaptor's test driver (tests/proto/test_dns.py runs it).
ifeq ($(CONFIG_DNS),y)
$(O)/tests/dns_driver: tests/drivers/dns_driver.c $(LIB_OBJS) $(DEPS_STAMPS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Wno-missing-prototypes -o $@ $(LD_START) $< $(LIB_OBJS) $(ALL_LDFLAGS) $(LIBS) $(LD_END)
TEST_TOOLS := $(O)/tests/dns_driver
endif
# The queue state reader for the relay tests (store/qstate, as mailq).
ifeq ($(CONFIG_RELAY),y)
$(O)/tests/qstate_tool: tests/drivers/qstate_tool.c $(LIB_OBJS) $(DEPS_STAMPS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Wno-missing-prototypes -o $@ $(LD_START) $< $(LIB_OBJS) $(ALL_LDFLAGS) $(LIBS) $(LD_END)
TEST_TOOLS += $(O)/tests/qstate_tool
endif
# The TLS handshake benchmark's client (tests/bench/handshake.sh).
ifeq ($(CONFIG_TLS),y)
$(O)/tests/tls_bench: tests/drivers/tls_bench.c $(LIB_OBJS) $(DEPS_STAMPS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Wno-missing-prototypes -o $@ $(LD_START) $< $(LIB_OBJS) $(ALL_LDFLAGS) $(LIBS) $(LD_END)
endif
.PHONY: test-tools
test-tools: $(O)/tests/unit $(TEST_TOOLS)

FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
ifneq ($(CONFIG_IMAP),y)
FUZZ_SRCS := $(filter-out tests/fuzz/fuzz_imap_parse.c tests/fuzz/fuzz_imap_search.c tests/fuzz/fuzz_mime.c tests/fuzz/fuzz_mimedec.c tests/fuzz/fuzz_imap_session.c tests/fuzz/fuzz_imap_two.c tests/fuzz/fuzz_folder.c,$(FUZZ_SRCS))
endif
ifneq ($(CONFIG_RELAY),y)
FUZZ_SRCS := $(filter-out tests/fuzz/fuzz_smtp_reply.c tests/fuzz/fuzz_mime7.c tests/fuzz/fuzz_smtp_out.c tests/fuzz/fuzz_qstate.c tests/fuzz/fuzz_maildrop.c,$(FUZZ_SRCS))
endif
ifneq ($(CONFIG_SMTP_SERVER),y)
FUZZ_SRCS := $(filter-out tests/fuzz/fuzz_smtp_session.c,$(FUZZ_SRCS))
endif
ifneq ($(CONFIG_DNS),y)
FUZZ_SRCS := $(filter-out tests/fuzz/fuzz_dns.c,$(FUZZ_SRCS))
endif
ifneq ($(CONFIG_ALIASES),y)
FUZZ_SRCS := $(filter-out tests/fuzz/fuzz_aliases.c,$(FUZZ_SRCS))
endif
ifneq ($(CONFIG_MAILBOX_INDEX),y)
FUZZ_SRCS := $(filter-out tests/fuzz/fuzz_index.c,$(FUZZ_SRCS))
endif
FUZZERS := $(patsubst tests/fuzz/%.c,$(O)/fuzz/%,$(FUZZ_SRCS))
.PHONY: fuzzers
fuzzers: $(FUZZERS)
# Every target gets tests/fuzz/memsock.c (in-memory client sockets and a
# virtual clock for the session targets), with postie's calls of these
# wrapped; the harness code itself is not instrumented for coverage.
FUZZ_WRAP := -Wl,--wrap=recv,--wrap=send,--wrap=ppoll,--wrap=close,--wrap=clock_gettime
$(O)/fuzz/memsock.o: tests/fuzz/memsock.c tests/fuzz/memsock.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -fno-sanitize=fuzzer-no-link -c -o $@ $<
$(O)/fuzz/%: tests/fuzz/%.c $(wildcard tests/fuzz/*.h) $(O)/fuzz/memsock.o $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Wno-missing-prototypes -fsanitize=fuzzer -o $@ $< $(O)/fuzz/memsock.o $(LIB_OBJS) $(ALL_LDFLAGS) $(FUZZ_WRAP) $(LIBS)

unit: $(O)/tests/unit
	$(QEMU) $(O)/tests/unit

run: all
	@tests/install-deps.sh run
	@board/demo/run.sh $(O)/postie

check:
	@tests/check.sh

# The cross stage with every protocol test file under qemu (make check runs
# a fixed subset).
check-cross:
	@tests/cross.sh --full

# BENCH_ARGS=--quick: the short run. The table: build/bench/table.md.
bench: all
	@tests/bench/bench_all.sh $(BENCH_ARGS)

size:
	@tests/bench/size.sh

fuzz:
	@FUZZ_SESSION_FACTOR=$${FUZZ_SESSION_FACTOR:-4} FUZZ_FAST=$${FUZZ_FAST:-1} \
		tests/fuzz/fuzz.sh $${FUZZ_SECONDS:-300}

# Man pages from the README's Running and Configuration reference.
man: build/man/postie.8 build/man/postie.conf.5
build/man/postie.8 build/man/postie.conf.5: README.md toolchain/mkman.py
	@$(PYTHON) toolchain/mkman.py README.md build/man

# make install [DESTDIR=...] [PREFIX=/usr]: the binary, the man pages and
# the links other MTAs' packages make (Debian's Postfix, the OpenWrt
# package): sbin/sendmail, bin/mailq (in every user's PATH; anyone may
# ask it), and with PREFIX=/usr the historical /usr/lib/sendmail.
# SENDMAIL_LINKS=0: no links, when another MTA owns them.
# install-systemd adds board/systemd/postie.service.
PREFIX ?= /usr
SENDMAIL_LINKS ?= 1
install: all man
	install -D -m 0755 $(O)/postie $(DESTDIR)$(PREFIX)/sbin/postie
ifeq ($(SENDMAIL_LINKS),1)
	ln -sf postie $(DESTDIR)$(PREFIX)/sbin/sendmail
	install -d $(DESTDIR)$(PREFIX)/bin
	ln -sf ../sbin/postie $(DESTDIR)$(PREFIX)/bin/mailq
ifeq ($(PREFIX),/usr)
	install -d $(DESTDIR)/usr/lib
	ln -sf ../sbin/postie $(DESTDIR)/usr/lib/sendmail
endif
endif
	install -D -m 0644 build/man/postie.8 $(DESTDIR)$(PREFIX)/share/man/man8/postie.8
	install -D -m 0644 build/man/postie.conf.5 $(DESTDIR)$(PREFIX)/share/man/man5/postie.conf.5
install-systemd: install
	install -D -m 0644 board/systemd/postie.service \
		$(DESTDIR)/etc/systemd/system/postie.service

clean:
	rm -rf build
