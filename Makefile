# Postern - top-level GNU Makefile.
#
#   make            build every program into $(BUILD)/ (default: build/)
#   make deps       install missing Debian packages (apt-get update first)
#   make test       deps + build + every unit and integration test
#   make check      the same without the deps step
#   make run        deps + build + a development instance (see README)
#   make asan       ASan+UBSan build in build-asan/ and the whole test run
#   make fuzz       build the libFuzzer harnesses and run each briefly
#   make install    PREFIX=/usr/local DESTDIR=
#   make clean

BUILD    ?= build
PREFIX   ?= /usr/local
DESTDIR  ?=
SANITIZE ?=
PYTHON   ?= /usr/bin/python3
SETGID_GROUP ?= postdrop

CC       ?= cc
PKGS     := libpcre2-8 lmdb openssl libsasl2
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN     := -Wall -Wextra -Werror -Wformat=2 -Wno-format-nonliteral \
            -Wstrict-prototypes -Wmissing-prototypes -Wshadow
# Install locations are compiled in as defaults; build and install with
# the same PREFIX.
DIR_DEFS := -DDEF_DAEMON_DIR='"$(PREFIX)/libexec/postern"' \
            -DDEF_COMMAND_DIR='"$(PREFIX)/sbin"'
CFLAGS_BASE := -std=gnu11 -g $(WARN) -D_GNU_SOURCE -Ilib $(PKG_CFLAGS) \
            $(DIR_DEFS) -fPIE -fstack-protector-strong
ifeq ($(SANITIZE),1)
CFLAGS_BASE += -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
            -fno-sanitize-recover=undefined
LDFLAGS_SAN := -fsanitize=address,undefined
else
CFLAGS_BASE += -O2 -D_FORTIFY_SOURCE=2
endif
CFLAGS   ?=
ALL_CFLAGS := $(CFLAGS_BASE) $(CFLAGS)
LDFLAGS  ?=
ALL_LDFLAGS := -pie -Wl,-z,relro,-z,now -Wl,--as-needed $(LDFLAGS_SAN) $(LDFLAGS)
LIBS     := $(PKG_LIBS) -lresolv

OBJ      := $(BUILD)/obj

# --- the shared library ----------------------------------------------------
LIB_SRCS := $(wildcard lib/util/*.c lib/mail/*.c lib/tls/*.c lib/sasl/*.c)
LIB_OBJS := $(LIB_SRCS:%.c=$(OBJ)/%.o)
LIBPOSTERN := $(BUILD)/libpostern.a

# --- programs --------------------------------------------------------------
# Each program: NAME_SRCS and where it is installed (bin or libexec).
# Programs whose sources exist (services arrive one folder at a time).
present = $(foreach p,$(1),$(if $(strip $($(p)_SRCS)),$(p)))

postern_SRCS  := cmd/postern.c cmd/postern_conf.c cmd/postern_map.c \
                 cmd/postern_ctl.c $(wildcard cmd/postern_queue*.c) \
                 cmd/postern_user.c
sendmail_SRCS := $(wildcard cmd/sendmail*.c)
postdrop_SRCS := $(wildcard cmd/postdrop*.c)
master_SRCS   := $(wildcard master/*.c)
anvil_SRCS    := $(wildcard anvil/*.c)
cleanup_SRCS  := $(wildcard cleanup/*.c)
smtpd_SRCS    := $(wildcard smtpd/*.c)
pickup_SRCS   := $(wildcard pickup/*.c)
showq_SRCS    := $(wildcard showq/*.c)
local_SRCS    := $(wildcard local/*.c)
qmgr_SRCS     := $(wildcard qmgr/*.c)
smtp_SRCS     := $(wildcard smtp/*.c)
pop3d_SRCS    := $(wildcard pop3d/*.c)
# lmtp is the smtp program under another name (Postfix does the same).
lmtp_SRCS     := $(smtp_SRCS)

BIN_PROGRAMS     := $(call present,postern sendmail)
LIBEXEC_PROGRAMS := $(call present,master anvil cleanup smtpd pickup showq qmgr \
                                   postdrop local smtp lmtp pop3d)

# Test-only programs (fixtures), never installed.
TEST_PROGRAMS := $(BUILD)/tests/libexec/testsvc $(BUILD)/tests/libexec/anvilc \
                 $(BUILD)/tests/libexec/fakecleanup
testsvc_SRCS  := tests/fixtures/testsvc.c
fakecleanup_SRCS := tests/fixtures/fakecleanup.c
anvilc_SRCS   := tests/fixtures/anvilc.c

PROGRAMS := $(BIN_PROGRAMS:%=$(BUILD)/bin/%) \
            $(LIBEXEC_PROGRAMS:%=$(BUILD)/libexec/%)

# --- tests -----------------------------------------------------------------
UNIT_SRCS  := $(wildcard tests/unit/test_*.c)
UNIT_TESTS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
CMOCKA_CFLAGS := $(shell pkg-config --cflags cmocka 2>/dev/null)
CMOCKA_LIBS   := $(shell pkg-config --libs cmocka 2>/dev/null)

# --- man pages -------------------------------------------------------------
MAN_SRCS := $(wildcard man/man1/*.1 man/man5/*.5 man/man7/*.7 man/man8/*.8)
MAN_GEN  := $(BUILD)/man/man5/main.cf.5
MAN_OUT  := $(MAN_SRCS:man/%=$(BUILD)/man/%) $(MAN_GEN)

.PHONY: all deps users test check unit integration run asan fuzz install \
        clean test-programs
.DEFAULT_GOAL := all

all: $(PROGRAMS) $(MAN_OUT)

test-programs: $(TEST_PROGRAMS)

deps:
	@sh mk/deps.sh

# The accounts Postern runs as (root only; see mk/users.sh).
users:
	@sh mk/users.sh

$(OBJ)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(LIBPOSTERN): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

# program_rule(OUTPUT, NAME): link NAME_SRCS with the library.
define program_rule
$(1): $$(patsubst %.c,$$(OBJ)/%.o,$$($(2)_SRCS)) $$(LIBPOSTERN)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(ALL_LDFLAGS) -o $$@ $$(filter %.o,$$^) $$(LIBPOSTERN) $$(LIBS)
endef
$(foreach p,$(BIN_PROGRAMS),$(eval $(call program_rule,$(BUILD)/bin/$(p),$(p))))
$(foreach p,$(LIBEXEC_PROGRAMS),$(eval $(call program_rule,$(BUILD)/libexec/$(p),$(p))))
$(foreach p,$(notdir $(TEST_PROGRAMS)),$(eval $(call program_rule,$(BUILD)/tests/libexec/$(p),$(p))))

$(BUILD)/tests/test_%: tests/unit/test_%.c $(LIBPOSTERN) tests/unit/unit.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(CMOCKA_CFLAGS) -Itests/unit -MMD -MP -o $@ $< \
	    $(ALL_LDFLAGS) $(LIBPOSTERN) $(LIBS) $(CMOCKA_LIBS)

$(BUILD)/tools/param-man: mk/param_man.c $(LIBPOSTERN)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(LIBPOSTERN) $(LIBS)

$(BUILD)/man/man5/main.cf.5: man/main.cf.5.in $(BUILD)/tools/param-man
	@mkdir -p $(dir $@)
	$(BUILD)/tools/param-man man/main.cf.5.in > $@.tmp && mv $@.tmp $@

$(BUILD)/man/%: man/%
	@mkdir -p $(dir $@)
	cp $< $@

unit: $(UNIT_TESTS)
	@set -e; for t in $(UNIT_TESTS); do \
	    echo "== $$t"; $$t; \
	done

integration: all test-programs
	POSTERN_BUILD=$(abspath $(BUILD)) $(PYTHON) -m pytest -q -p no:cacheprovider tests/integration

check: all unit integration

test: deps
	@sh mk/users.sh
	$(MAKE) check

run: deps
	$(MAKE) all
	@sh mk/users.sh
	@sh mk/run.sh $(BUILD)

asan: deps
	@sh mk/users.sh
	$(MAKE) BUILD=build-asan SANITIZE=1 check

# make bench: SMTP accept rate, end-to-end delivery rate and STARTTLS
# handshakes against Postfix, POP3 downloads against Dovecot
# (bench/README.md), as root; BENCH_ARGS passes options to all of them,
# e.g. BENCH_ARGS=--quick or --profile.
.PHONY: bench
bench: all
	@sh mk/users.sh
	$(PYTHON) bench/smtp-accept --build $(abspath $(BUILD)) $(BENCH_ARGS)
	$(PYTHON) bench/smtp-deliver --build $(abspath $(BUILD)) $(BENCH_ARGS)
	$(PYTHON) bench/smtp-relay --build $(abspath $(BUILD)) $(BENCH_ARGS)
	$(PYTHON) bench/smtp-tls --build $(abspath $(BUILD)) $(BENCH_ARGS)
	$(PYTHON) bench/pop3 --build $(abspath $(BUILD)) $(BENCH_ARGS)

# fuzz/fuzz_common.c is not a fuzzer: what the session harnesses share.
FUZZERS := $(patsubst fuzz/fuzz_%.c,%,\
           $(filter-out fuzz/fuzz_common.c,$(wildcard fuzz/fuzz_*.c)))
FUZZ_BUILD := build-fuzz
FUZZ_TIME ?= 20
# fuzz_smtpd.c compiles smtpd/smtpd.c in (its session code is static) and
# links the other smtpd sources.
FUZZ_SMTPD_OBJS := $(patsubst %.c,$(FUZZ_BUILD)/obj/%.o,\
                   $(filter-out smtpd/smtpd.c,$(smtpd_SRCS)))
# fuzz_pop3d.c likewise compiles pop3d/pop3d.c in.
FUZZ_POP3D_OBJS := $(patsubst %.c,$(FUZZ_BUILD)/obj/%.o,\
                   $(filter-out pop3d/pop3d.c,$(pop3d_SRCS)))
# Both link the set-up and client code they share.
FUZZ_COMMON_OBJ := $(FUZZ_BUILD)/obj/fuzz/fuzz_common.o
fuzz: deps
	$(MAKE) BUILD=$(FUZZ_BUILD) CC=clang SANITIZE=1 \
	    CFLAGS="-fsanitize=fuzzer-no-link" $(FUZZ_BUILD)/libpostern.a \
	    $(FUZZ_SMTPD_OBJS) $(FUZZ_POP3D_OBJS) $(FUZZ_COMMON_OBJ)
	@set -e; for f in $(FUZZERS); do \
	    mkdir -p $(FUZZ_BUILD)/fuzz/corpus-$$f; \
	    extra=; if [ $$f = smtpd ]; then \
	        extra="$(FUZZ_SMTPD_OBJS) $(FUZZ_COMMON_OBJ) -lpthread"; \
	    elif [ $$f = pop3d ]; then \
	        extra="$(FUZZ_POP3D_OBJS) $(FUZZ_COMMON_OBJ) -lpthread"; fi; \
	    clang $(CFLAGS_BASE) -O1 -fno-omit-frame-pointer \
	        -fsanitize=fuzzer,address,undefined \
	        -fno-sanitize-recover=undefined -o $(FUZZ_BUILD)/fuzz/$$f \
	        fuzz/fuzz_$$f.c $$extra $(FUZZ_BUILD)/libpostern.a $(LIBS); \
	    echo "== fuzz $$f ($(FUZZ_TIME)s)"; \
	    $(FUZZ_BUILD)/fuzz/$$f -max_total_time=$(FUZZ_TIME) \
	        -print_final_stats=0 $(FUZZ_BUILD)/fuzz/corpus-$$f \
	        $$( [ -d fuzz/seeds/$$f ] && echo fuzz/seeds/$$f ); \
	done

install: all
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/libexec/postern \
	    $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man5 \
	    $(DESTDIR)$(PREFIX)/share/man/man7 $(DESTDIR)$(PREFIX)/share/man/man8 \
	    $(DESTDIR)$(PREFIX)/share/postern
	install -m 755 $(BIN_PROGRAMS:%=$(BUILD)/bin/%) $(DESTDIR)$(PREFIX)/sbin/
	$(if $(LIBEXEC_PROGRAMS),install -m 755 $(LIBEXEC_PROGRAMS:%=$(BUILD)/libexec/%) $(DESTDIR)$(PREFIX)/libexec/postern/)
	for f in $(MAN_OUT); do \
	    sec=$$(basename $$(dirname $$f)); \
	    install -m 644 $$f $(DESTDIR)$(PREFIX)/share/man/$$sec/; \
	done
	install -m 644 conf/main.cf conf/master.cf $(DESTDIR)$(PREFIX)/share/postern/
	@if [ ! -e $(DESTDIR)/etc/postern/main.cf ]; then \
	    install -d $(DESTDIR)/etc/postern; \
	    install -m 644 conf/main.cf conf/master.cf $(DESTDIR)/etc/postern/; \
	fi
	@if [ -z "$(DESTDIR)" ]; then sh mk/users.sh; fi
	@# postdrop is set-gid $(SETGID_GROUP) (main.cf setgid_group): it
	@# lets any local user write maildrop/ and reach public/.
	@if [ -e $(BUILD)/libexec/postdrop ]; then \
	    f=$(DESTDIR)$(PREFIX)/libexec/postern/postdrop; \
	    if chgrp $(SETGID_GROUP) $$f 2>/dev/null; then chmod 2755 $$f; \
	    else echo "install: cannot give $$f to group $(SETGID_GROUP):" \
	        "run chgrp $(SETGID_GROUP) $$f; chmod 2755 $$f as root"; fi; \
	fi

clean:
	rm -rf build build-asan build-fuzz

-include $(shell find $(BUILD)/obj $(BUILD)/tests -name '*.d' 2>/dev/null)
