# Makefile: builds and installs the repmgr_barman_ha extension with PGXS, and the
# setuid helper in src/helper with rules of its own (it must not link the
# server's $(LIBS)).  Usual targets: all, install, installcheck, clean.
#
# HELPER_GROUP names the group allowed to run the helper: postgres on a
# database node, barman on the backup host.

EXTENSION = repmgr_barman_ha
MODULE_big = repmgr_barman_ha
OBJS = \
	src/repmgr_barman_ha.o \
	src/guc.o \
	src/shared_state.o \
	src/slot.o \
	src/helper_exec.o \
	src/worker.o \
	src/reconcile_primary.o \
	src/reconcile_standby.o \
	src/primary_slot.o \
	src/sql_api.o
DATA = repmgr_barman_ha--1.0.sql repmgr_barman_ha--1.0--1.1.sql
PGFILEDESC = "repmgr_barman_ha - keeps Barman and client routing on the primary"

REGRESS = status guc permissions upgrade
REGRESS_OPTS = --temp-config=$(srcdir)/test/regress.conf --temp-instance=./tmp_check
TAP_TESTS = 1
PROVE_TESTS = test/t/*.pl

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
HELPER_PATH = $(shell $(PG_CONFIG) --bindir)/barman_ha_helper
PG_CPPFLAGS = -I$(srcdir)/include -I$(libpq_srcdir) -DBARMAN_HA_HELPER_PATH='"$(HELPER_PATH)"'
SHLIB_LINK_INTERNAL = $(libpq)
include $(PGXS)

HELPER_GROUP ?= postgres

all: helper
install: install-helper
clean: clean-helper

.PHONY: helper install-helper clean-helper
helper:
	$(MAKE) -C src/helper
install-helper: helper
	$(MAKE) -C src/helper install BINDIR='$(DESTDIR)$(bindir)' HELPER_GROUP='$(HELPER_GROUP)'
clean-helper:
	$(MAKE) -C src/helper clean

# The two halves of installcheck, so the test runner can count each.
.PHONY: installcheck-regress installcheck-tap
installcheck-regress:
	$(pg_regress_installcheck) $(REGRESS_OPTS) $(REGRESS)
installcheck-tap:
	$(prove_installcheck)
