/*-------------------------------------------------------------------------
 *
 * test_parse.c
 *	  The orchestrator's strict parsers (orchestrator/base/parse.c): numbers,
 *	  ports, addresses, LSNs and SSH_ORIGINAL_COMMAND's words, at and
 *	  around every bound.
 *
 *-------------------------------------------------------------------------
 */
#include "orchestrator.h"
#include "tap.h"

#include <arpa/inet.h>

static const struct
{
	const char *s;
	long		min,
				max;
	int			rc;
	long		want;
}			longs[] = {
	{"0", 0, 10, 0, 0},
	{"10", 0, 10, 0, 10},
	{"11", 0, 10, -1, 0},
	{"1", 1, 1, 0, 1},
	{"0", 1, 1, -1, 0},
	{"2", 1, 1, -1, 0},
	{"007", 0, 10, 0, 7},
	{"", 0, 10, -1, 0},
	{"-1", -5, 10, -1, 0},
	{"+1", 0, 10, -1, 0},
	{" 1", 0, 10, -1, 0},
	{"1 ", 0, 10, -1, 0},
	{"0x10", 0, 100, -1, 0},
	{"1e3", 0, 10000, -1, 0},
	{"1.0", 0, 10, -1, 0},
	{"12a", 0, 1000, -1, 0},
	{"999999999999999999", 0, 999999999999999999L, 0, 999999999999999999L},
	{"1000000000000000000", 0, 999999999999999999L, -1, 0},
	{"000000000000000001", 0, 10, 0, 1},
	{"0000000000000000001", 0, 10, -1, 0},
	{"2147483647", 1, 2147483647L, 0, 2147483647L},
	{"2147483648", 1, 2147483647L, -1, 0},
	{"3600", 1, 3600, 0, 3600},
	{"3601", 1, 3600, -1, 0},
};

static const struct
{
	const char *s;
	int			rc;
	unsigned	want;
}			ports[] = {
	{"1", 0, 1},
	{"0", -1, 0},
	{"65535", 0, 65535},
	{"65536", -1, 0},
	{"5432", 0, 5432},
	{"054321", 0, 54321},
	{"-1", -1, 0},
	{"", -1, 0},
	{"80x", -1, 0},
	{"99999999999", -1, 0},
};

static const struct
{
	const char *s;
	int			rc;
	const char *want;
}			addrs[] = {
	{"10.213.0.10", 0, "10.213.0.10"},
	{"127.0.0.1", 0, "127.0.0.1"},
	{"0.0.0.1", 0, "0.0.0.1"},
	{"255.255.255.254", 0, "255.255.255.254"},
	{"0.0.0.0", -1, NULL},
	{"255.255.255.255", -1, NULL},
	{"256.0.0.1", -1, NULL},
	{"10.0.0", -1, NULL},
	{"10.1", -1, NULL},
	{"167772161", -1, NULL},
	{"010.0.0.1", -1, NULL},
	{"0x0a.0.0.1", -1, NULL},
	{"10.0.0.1 ", -1, NULL},
	{" 10.0.0.1", -1, NULL},
	{"10.0.0.1.", -1, NULL},
	{"10.0.0.1/24", -1, NULL},
	{"::1", -1, NULL},
	{"", -1, NULL},
	{"localhost", -1, NULL},
	{"100.100.100.1000", -1, NULL},
};

static const struct
{
	const char *s;
	bool		ok;
	uint64_t	want;
}			lsns[] = {
	{"0/0", true, 0},
	{"0/1", true, 1},
	{"1/0", true, UINT64_C(1) << 32},
	{"16/B374D848", true, UINT64_C(0x16B374D848)},
	{"FFFFFFFF/FFFFFFFF", true, UINT64_MAX},
	{"ffffffff/ffffffff", true, UINT64_MAX},
	{"0/3000028", true, 0x3000028},
	{"00000000/00000001", true, 1},
	{"000000000/1", false, 0},
	{"1/000000000", false, 0},
	{"/1", false, 0},
	{"1/", false, 0},
	{"1", false, 0},
	{"", false, 0},
	{"/", false, 0},
	{"1/2/3", false, 0},
	{"G/1", false, 0},
	{"1/G", false, 0},
	{"-1/1", false, 0},
	{"1/-1", false, 0},
	{" 1/1", false, 0},
	{"1/1 ", false, 0},
	{"0x1/1", false, 0},
	{"1/0x1", false, 0},
};

static const struct
{
	const char *line;
	int			max;
	int			n;
	const char *words;			/* joined by '|' */
}			splits[] = {
	{"promote db1 2", 8, 3, "promote|db1|2"},
	{"promote  db1   2", 8, 3, "promote|db1|2"},
	{" status ", 8, 1, "status"},
	{"", 8, 0, ""},
	{"   ", 8, 0, ""},
	{"a b c", 3, 3, "a|b|c"},
	{"a b c d", 3, -1, NULL},
	{"promote db1;id", 8, -1, NULL},
	{"promote db1\t2", 8, -1, NULL},
	{"promote 'db1'", 8, -1, NULL},
	{"promote $(id)", 8, -1, NULL},
	{"promote db1\n2", 8, -1, NULL},
	{"promote db_1.x-y 2", 8, 3, "promote|db_1.x-y|2"},
	{"promote db1 2 > /tmp/x", 8, -1, NULL},
};

static void
test_split(int i)
{
	char		line[300],
				joined[300] = "",
			   *words[MAX_ARGS];
	const char *shown = splits[i].line;
	int			n;

	snprintf(line, sizeof(line), "%s", splits[i].line);
	n = split_words(line, words, splits[i].max);
	if (!is_int(n, splits[i].n, "split_words(\"%s\", %d) count", shown, splits[i].max))
		return;
	for (int w = 0; w < n; w++)
	{
		if (w > 0)
			strcat(joined, "|");
		strcat(joined, words[w]);
	}
	if (n >= 0)
		is_str(joined, splits[i].words, "split_words(\"%s\") words", shown);
}

int
main(void)
{
	char		longline[300];
	char	   *words[MAX_ARGS];
	int			accepted = 0;

	for (size_t i = 0; i < lengthof(splits); i++)
		accepted += splits[i].n >= 0;
	plan(2 * lengthof(longs) + 2 * lengthof(ports) + 2 * lengthof(addrs) +
		 2 * lengthof(lsns) + lengthof(splits) + accepted + 6);

	for (size_t i = 0; i < lengthof(longs); i++)
	{
		long		v = -12345;
		int			rc = parse_long(longs[i].s, longs[i].min, longs[i].max, &v);

		is_int(rc, longs[i].rc, "parse_long(\"%s\", %ld, %ld) %s", longs[i].s,
			   longs[i].min, longs[i].max, longs[i].rc == 0 ? "accepted" : "refused");
		is_int(v, longs[i].rc == 0 ? longs[i].want : -12345,
			   "parse_long(\"%s\") %s", longs[i].s,
			   longs[i].rc == 0 ? "value" : "leaves the output alone");
	}
	for (size_t i = 0; i < lengthof(ports); i++)
	{
		uint16_t	p = 7;
		int			rc = parse_port(ports[i].s, &p);

		is_int(rc, ports[i].rc, "parse_port(\"%s\") %s", ports[i].s,
			   ports[i].rc == 0 ? "accepted" : "refused");
		is_int(p, ports[i].rc == 0 ? ports[i].want : 7, "parse_port(\"%s\") value", ports[i].s);
	}
	for (size_t i = 0; i < lengthof(addrs); i++)
	{
		struct in_addr a = {0};
		char		got[INET_ADDRSTRLEN] = "";
		int			rc = parse_ipv4(addrs[i].s, &a);

		is_int(rc, addrs[i].rc, "parse_ipv4(\"%s\") %s", addrs[i].s,
			   addrs[i].rc == 0 ? "accepted" : "refused");
		if (addrs[i].rc == 0)
			is_str(inet_ntop(AF_INET, &a, got, sizeof(got)), addrs[i].want,
				   "parse_ipv4(\"%s\") value", addrs[i].s);
		else
			is_int(a.s_addr, 0, "parse_ipv4(\"%s\") leaves the output alone", addrs[i].s);
	}
	for (size_t i = 0; i < lengthof(lsns); i++)
	{
		uint64_t	l = 42;
		bool		r = parse_lsn(lsns[i].s, &l);

		is_int(r, lsns[i].ok, "parse_lsn(\"%s\") %s", lsns[i].s,
			   lsns[i].ok ? "accepted" : "refused");
		ok(l == (lsns[i].ok ? lsns[i].want : 42), "parse_lsn(\"%s\") value", lsns[i].s);
	}
	for (size_t i = 0; i < lengthof(splits); i++)
		test_split(i);

	memset(longline, 'a', 256);
	longline[256] = '\0';
	is_int(split_words(longline, words, MAX_ARGS), 1, "split_words: 256 bytes accepted");
	memset(longline, 'a', 257);
	longline[257] = '\0';
	is_int(split_words(longline, words, MAX_ARGS), -1, "split_words: 257 bytes refused");

	ok(plain_chars("db1_x.y-z", "_.-"), "plain_chars: letters, digits and the extras");
	ok(!plain_chars("db1/x", "_.-"), "plain_chars: a byte not in the extras");
	ok(!plain_chars("d\xc3\xa9", ""), "plain_chars: non-ASCII");
	ok(plain_chars("", ""), "plain_chars: the empty string");

	return done();
}
