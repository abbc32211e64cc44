# Makefile: builds and installs the repmgr_barman_ha extension with PGXS, and
# its three programs with their own short Makefiles (a program must not link
# the server's $(LIBS)).  Which target goes on which host:
#
#   DB nodes     make && make install
#                  the extension and barman_ha_client (unprivileged, 0755)
#   backup host  make backup && make install-backup install-systemd
#                  barman_ha_orchestrator (0755, runs as barman) and
#                  barman_ha_nat (root:barman 4750, the only privileged one)
#                  in BACKUP_BINDIR, and the boot unit
#
# make check: what a developer runs after each change, as any user but root
# (initdb refuses root), without network namespaces or an installed
# extension: pg_regress on a temporary instance of a private copy of this
# PostgreSQL installation (tmp_install/, where the extension is installed by
# "make install DESTDIR=..."; test/tmp-install.sh), then test/unit (the C
# unit tests and the programs' usage errors).
# installcheck runs pg_regress and the TAP tests of the extension against
# the installed extension.

EXTENSION = repmgr_barman_ha
MODULE_big = repmgr_barman_ha
OBJS = \
	src/repmgr_barman_ha.o \
	src/guc.o \
	src/shared_state.o \
	src/slot.o \
	src/helper_exec.o \
	src/ssh_connection.o \
	src/worker.o \
	src/reconcile_primary.o \
	src/reconcile_standby.o \
	src/standby_upstream.o \
	src/sql_api.o
DATA = repmgr_barman_ha--1.0.sql repmgr_barman_ha--1.0--1.1.sql repmgr_barman_ha--1.1--1.2.sql
PGFILEDESC = "repmgr_barman_ha - keeps Barman and client routing on the primary"

REGRESS = status guc permissions upgrade
REGRESS_OPTS = --temp-config=$(srcdir)/test/regress.conf --temp-instance=./tmp_check
TAP_TESTS = 1
PROVE_TESTS = test/t/*.pl

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
CLIENT_PATH = $(shell $(PG_CONFIG) --bindir)/barman_ha_client
PG_CPPFLAGS = -I$(srcdir)/include -I$(libpq_srcdir) -DBARMAN_HA_HELPER_PATH='"$(CLIENT_PATH)"'
SHLIB_LINK_INTERNAL = $(libpq)
# PGXS's own check target only says it is not supported: "make check" alone
# runs ours, both halves even when the first fails.
ifeq ($(MAKECMDGOALS),check)
check:
	$(MAKE) -k check-regress check-unit
else
include $(PGXS)
endif

BACKUP_BINDIR ?= /usr/local/sbin
BACKUP_GROUP ?= barman
UNITDIR ?= /etc/systemd/system
PROGRAMS = client orchestrator nat

all: client-program
install: install-client
clean: clean-programs

.PHONY: client-program backup install-client install-backup install-systemd clean-programs
client-program:
	$(MAKE) -C client
backup:
	$(MAKE) -C orchestrator
	$(MAKE) -C nat
install-client: client-program
	$(MAKE) -C client install BINDIR='$(DESTDIR)$(bindir)'
install-backup: backup
	$(MAKE) -C orchestrator install BINDIR='$(DESTDIR)$(BACKUP_BINDIR)' \
		NAT_PROGRAM='$(BACKUP_BINDIR)/barman_ha_nat'
	$(MAKE) -C nat install BINDIR='$(DESTDIR)$(BACKUP_BINDIR)' NAT_GROUP='$(BACKUP_GROUP)'
install-systemd:
	install -d -m 0755 '$(DESTDIR)$(UNITDIR)'
	for u in systemd/*.service systemd/*.timer; do \
		sed 's|@BACKUP_BINDIR@|$(BACKUP_BINDIR)|g' $$u >'$(DESTDIR)$(UNITDIR)'/$$(basename $$u) && \
		chmod 0644 '$(DESTDIR)$(UNITDIR)'/$$(basename $$u) || exit 1; done
clean-programs:
	for p in $(PROGRAMS) test/unit; do $(MAKE) -C $$p clean || exit 1; done

# The two halves of installcheck, so the test runner can count each.
.PHONY: installcheck-regress installcheck-tap
installcheck-regress:
	$(pg_regress_installcheck) $(REGRESS_OPTS) $(REGRESS)
installcheck-tap:
	$(prove_installcheck)

TMP_INSTALL = $(CURDIR)/tmp_install
EXTRA_CLEAN = tmp_install
.PHONY: check check-regress check-unit
check-regress: all
	rm -rf '$(TMP_INSTALL)'
	$(MAKE) -s install DESTDIR='$(TMP_INSTALL)' >/dev/null
	$(srcdir)/test/tmp-install.sh '$(TMP_INSTALL)' '$(bindir)' '$(pkglibdir)' '$(datadir)'
	$(top_builddir)/src/test/regress/pg_regress --inputdir=$(srcdir) \
		--bindir='$(TMP_INSTALL)$(bindir)' $(pg_regress_locale_flags) $(EXTRA_REGRESS_OPTS) \
		$(REGRESS_OPTS) $(REGRESS)
check-unit:
	$(MAKE) -C test/unit check

# make deb: the Debian packages (debian/), built with dpkg-buildpackage -b in
# a scratch copy of the tree (the checkout's files, build products left out),
# so nothing of the build lands in the checkout.  The copy's debian/control is
# made anew from debian/control.in for this system's supported PostgreSQL
# majors (pg_buildext updatecontrol): postgresql-15-repmgr-barman-ha on
# Debian 12, postgresql-17-... on Debian 13.  The .debs go to DEB_DIR.
DEB_DIR ?= $(abspath ..)
.PHONY: deb
deb:
	@set -e; w=$$(mktemp -d /var/tmp/repmgr-barman-ha-deb.XXXXXX); trap 'rm -rf "$$w"' EXIT; \
	mkdir "$$w/src"; \
	if git -C '$(CURDIR)' rev-parse --git-dir >/dev/null 2>&1; then \
		git -C '$(CURDIR)' ls-files -z -co --exclude-standard | (cd '$(CURDIR)' && \
			xargs -0 sh -c 'for f; do [ ! -e "$$f" ] || cp -a --parents "$$f" "$$0"; done' "$$w/src"); \
	else cp -a '$(CURDIR)/.' "$$w/src/"; fi; \
	(cd "$$w/src" && pg_buildext updatecontrol && dpkg-buildpackage -us -uc -b); \
	mkdir -p '$(DEB_DIR)' && cp "$$w"/*.deb "$$w"/*.buildinfo "$$w"/*.changes '$(DEB_DIR)/' && \
	ls "$$w"/*.deb | sed 's|.*/|$(DEB_DIR)/|'
