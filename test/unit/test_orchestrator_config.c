/*-------------------------------------------------------------------------
 *
 * test_orchestrator_config.c
 *	  orchestrator.conf (orchestrator/base/config.c): the defaults, every key's
 *	  accepted values and bounds, and the refusals: usage exit (2) and one
 *	  line on stderr naming the file and the line.  config_load's trust
 *	  checks where no root is needed: a relative path, a world-writable
 *	  folder, a missing file, something that is not a file.
 *
 *-------------------------------------------------------------------------
 */
#include "orchestrator.h"
#include "tap.h"

#include <syslog.h>

#define PROG "barman_ha_orchestrator: "

/* The integer keys, their bounds and fields. */
static const struct
{
	const char *key;
	long		min,
				max;
	size_t		off;
}			ints[] = {
	{"archive_timeout", 1, 3600, offsetof(struct config, archive_timeout)},
	{"receive_wal_stop_grace_ms", 0, 60000, offsetof(struct config, stop_grace_ms)},
	{"catchup_timeout", 1, 600, offsetof(struct config, catchup_timeout)},
	{"lock_timeout", 1, 600, offsetof(struct config, lock_timeout)},
	{"claim_timeout_ms", 100, 60000, offsetof(struct config, claim_timeout_ms)},
	{"probe_timeout_ms", 10, 60000, offsetof(struct config, probe_timeout_ms)},
	{"probe_connect_ms", 10, 60000, offsetof(struct config, probe_connect_ms)},
	{"watch_interval_ms", 10, 60000, offsetof(struct config, watch_interval_ms)},
};

/* Texts that parse, and one field each that shows it. */
static const struct
{
	const char *text;
	size_t		off;			/* a string field */
	const char *want;
}			goods[] = {
	{"barman_server = pg", offsetof(struct config, barman_server), "pg"},
	{"barman_server=pg", offsetof(struct config, barman_server), "pg"},
	{"  barman_server \t=\t pg  \r", offsetof(struct config, barman_server), "pg"},
	{"barman_server = pg # the main one", offsetof(struct config, barman_server), "pg"},
	{"# comment\n\n   \nbarman_server = pg\n", offsetof(struct config, barman_server), "pg"},
	{"barman_server = a\nbarman_server = b", offsetof(struct config, barman_server), "b"},
	{"barman_server = db_1.x-y", offsetof(struct config, barman_server), "db_1.x-y"},
	{"barman_user = barman2", offsetof(struct config, barman_user), "barman2"},
	{"barman_path = /opt/barman/bin/barman", offsetof(struct config, barman_path), "/opt/barman/bin/barman"},
	{"barman_config = /etc/barman.conf", offsetof(struct config, barman_config), "/etc/barman.conf"},
	{"nat_program = /usr/lib/x/barman_ha_nat", offsetof(struct config, nat_program), "/usr/lib/x/barman_ha_nat"},
	{"streaming_wals_directory = /var/lib/barman/pg/streaming", offsetof(struct config, streaming_dir),
	"/var/lib/barman/pg/streaming"},
	{"state_directory = /var/lib/x", offsetof(struct config, state_dir), "/var/lib/x"},
	{"barman_conninfo = host=10.213.0.10 port=54321 user=barman dbname=postgres",
		offsetof(struct config, barman_conninfo),
	"host=10.213.0.10 port=54321 user=barman dbname=postgres"},
	{"claim_conninfo = user=barman sslmode=verify-full", offsetof(struct config, claim_conninfo),
	"user=barman sslmode=verify-full"},
	{"barman_application_name = receive_wal", offsetof(struct config, barman_appname), "receive_wal"},
	{"barman_conninfo =", offsetof(struct config, barman_conninfo), ""},
};

/* Texts refused, the line and the words of the error. */
static const struct
{
	const char *text;
	const char *error;			/* after "PROG PATH: " */
}			bads[] = {
	{"barman_server", "line 1: expected key = value"},
	{"frob = 1", "line 1: unknown key \"frob\""},
	{"Barman_server = pg", "line 1: unknown key \"Barman_server\""},
	{"barman/server = pg", "line 1: invalid key \"barman/server\""},
	{"= pg", "line 1: invalid key \"\""},
	{"barman_server = ", "line 1: invalid value for \"barman_server\""},
	{"barman_server = -pg", "line 1: invalid value for \"barman_server\""},
	{"barman_server = .pg", "line 1: invalid value for \"barman_server\""},
	{"barman_server = p g", "line 1: invalid value for \"barman_server\""},
	{"barman_server = pg;id", "line 1: invalid value for \"barman_server\""},
	{"barman_server = 0123456789012345678901234567890123456789012345678901234567890123",
	"line 1: invalid value for \"barman_server\""},
	{"barman_user = bar/man", "line 1: invalid value for \"barman_user\""},
	{"barman_path = barman", "line 1: invalid value for \"barman_path\""},
	{"barman_path = /usr/bin/../bin/barman", "line 1: invalid value for \"barman_path\""},
	{"barman_path = /usr/bin/bar man", "line 1: invalid value for \"barman_path\""},
	{"barman_path = /usr/bin/barman;id", "line 1: invalid value for \"barman_path\""},
	{"barman_path = ", "line 1: invalid value for \"barman_path\""},
	{"nat_program = ~/nat", "line 1: invalid value for \"nat_program\""},
	{"state_directory = /var/lib/$x", "line 1: invalid value for \"state_directory\""},
	{"barman_conninfo = host='x'", "line 1: invalid value for \"barman_conninfo\""},
	{"barman_conninfo = password=a\"b", "line 1: invalid value for \"barman_conninfo\""},
	{"claim_conninfo = host=x\\y", "line 1: invalid value for \"claim_conninfo\""},
	{"claim_check = yes", "line 1: invalid value for \"claim_check\""},
	{"claim_check = 1", "line 1: invalid value for \"claim_check\""},
	{"claim_check = ON", "line 1: invalid value for \"claim_check\""},
	{"claim_check =", "line 1: invalid value for \"claim_check\""},
	{"lock_timeout = 5s", "line 1: invalid value for \"lock_timeout\""},
	{"lock_timeout = -5", "line 1: invalid value for \"lock_timeout\""},
	{"lock_timeout = 0x5", "line 1: invalid value for \"lock_timeout\""},
	{"lock_timeout = ", "line 1: invalid value for \"lock_timeout\""},
	{"barman_server = pg\nlock_timeout = 5\nfrob = 1\nbarman_user = x", "line 3: unknown key \"frob\""},
};

static char out[4096];

/* config_parse on a copy of text; its stderr in out. */
static int
parse(struct config *cfg, const char *text)
{
	char		buf[1024];

	snprintf(buf, sizeof(buf), "%s", text);
	return with_stderr(out, config_parse(cfg, buf, "/etc/o.conf"));
}

static void
test_int(int i)
{
	struct config cfg;
	char		text[128];
	const char *k = ints[i].key;
	long		probes[] = {ints[i].min, ints[i].max, ints[i].min - 1, ints[i].max + 1};

	for (int p = 0; p < 4; p++)
	{
		bool		good = p < 2;
		int			rc;

		snprintf(text, sizeof(text), "%s = %ld", k, probes[p]);
		rc = parse(&cfg, text);
		is_int(rc, good ? BHA_EXIT_OK : BHA_EXIT_USAGE, "%s = %ld %s", k, probes[p],
			   good ? "accepted" : "refused");
		if (good)
			is_int(*(int *) ((char *) &cfg + ints[i].off), probes[p], "%s = %ld: the value", k, probes[p]);
		else
			is_int(count_lines(out), 1, "%s = %ld: one line on stderr", k, probes[p]);
	}
}

int
main(void)
{
	struct config cfg;
	char		want[512];
	int			rc;

	/* errorf logs to syslog too: not from a test */
	setlogmask(LOG_MASK(LOG_EMERG));
	plan(14 + 8 * lengthof(ints) + 2 * lengthof(goods) + 3 * lengthof(bads) + 8);

	/* the defaults, from an empty file */
	is_int(parse(&cfg, ""), BHA_EXIT_OK, "an empty file is accepted");
	is_str(out, "", "an empty file: nothing on stderr");
	is_str(cfg.path, "/etc/o.conf", "the path is kept");
	ok(cfg.nat_program[0] == '/', "default nat_program: the build's NAT_PROGRAM, a full path");
	is_str(cfg.barman_user, "barman", "default barman_user");
	is_str(cfg.barman_path, "/usr/bin/barman", "default barman_path");
	is_str(cfg.barman_appname, "barman_receive_wal", "default barman_application_name");
	is_str(cfg.state_dir, DEFAULT_STATE_DIR, "default state_directory");
	is_int(cfg.archive_timeout, 15, "default archive_timeout");
	is_int(cfg.lock_timeout, 5, "default lock_timeout");
	is_int(cfg.watch_interval_ms, 200, "default watch_interval_ms");
	ok(cfg.claim_check, "the claim check is on by default");
	ok(strstr(cfg.claim_conninfo, "sslmode=verify-full") != NULL &&
	   strstr(cfg.claim_conninfo, "sslcert=") != NULL && strstr(cfg.claim_conninfo, "password") == NULL,
	   "by default the claim check logs in with a certificate, to a node that proves who it is");
	is_str(cfg.barman_server, "", "no default barman_server");

	for (size_t i = 0; i < lengthof(ints); i++)
		test_int(i);

	for (size_t i = 0; i < lengthof(goods); i++)
	{
		rc = parse(&cfg, goods[i].text);
		is_int(rc, BHA_EXIT_OK, "accepted: %s", goods[i].text);
		is_str((char *) &cfg + goods[i].off, goods[i].want, "the value of: %s", goods[i].text);
	}

	for (size_t i = 0; i < lengthof(bads); i++)
	{
		rc = parse(&cfg, bads[i].text);
		is_int(rc, BHA_EXIT_USAGE, "refused with the usage exit: %s", bads[i].text);
		snprintf(want, sizeof(want), PROG "/etc/o.conf: %s\n", bads[i].error);
		is_str(out, want, "the error line of: %s", bads[i].text);
		is_int(count_lines(out), 1, "one line for: %s", bads[i].text);
	}

	/* blank lines count: an error names the line an editor shows */
	rc = parse(&cfg, "\n\nbarman_server pg");
	is_str(out, PROG "/etc/o.conf: line 3: expected key = value\n", "an error after two blank lines names line 3");

	rc = parse(&cfg, "claim_check = off");
	ok(rc == BHA_EXIT_OK && !cfg.claim_check, "claim_check = off");
	rc = parse(&cfg, "claim_check = false\nclaim_check = true");
	ok(rc == BHA_EXIT_OK && cfg.claim_check, "claim_check = true, the last line wins");

	/* config_load: what it refuses before parsing */
	rc = with_stderr(out, config_load(&cfg, "o.conf"));
	is_str(out, PROG "configuration o.conf: an absolute path is required\n", "config_load: a relative path");
	rc = with_stderr(out, config_load(&cfg, "/tmp/o.conf"));
	ok(rc == BHA_EXIT_USAGE && strcmp(out, PROG "configuration: untrusted: /tmp is writable by group or others\n") == 0,
	   "config_load: a world-writable folder above the file");
	rc = with_stderr(out, config_load(&cfg, "/nonexistent-bha/o.conf"));
	ok(rc == BHA_EXIT_USAGE && strncmp(out, PROG "configuration: cannot open directory /nonexistent-bha", 60) == 0,
	   "config_load: a missing folder");
	rc = with_stderr(out, config_load(&cfg, "/dev/null"));
	ok(rc == BHA_EXIT_USAGE && strstr(out, "/dev/null is not a regular file") != NULL,
	   "config_load: not a regular file");
	rc = with_stderr(out, config_load(&cfg, "/etc/nonexistent-bha.conf"));
	ok(rc == BHA_EXIT_USAGE && strstr(out, "configuration: cannot open /etc/nonexistent-bha.conf") != NULL,
	   "config_load: a missing file");

	return done();
}
