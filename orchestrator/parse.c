/*-------------------------------------------------------------------------
 *
 * parse.c
 *	  Strict parsers for everything that reaches the orchestrator from
 *	  outside: command-line words, configuration values, SSH_ORIGINAL_COMMAND
 *	  and positions in a server's replies.
 *	  Whitelists and explicit bounds only; nothing here allocates.
 *
 *-------------------------------------------------------------------------
 */
#include "orchestrator.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Every byte is an ASCII letter, a digit or one of extra. */
bool
plain_chars(const char *s, const char *extra)
{
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
			  (*s >= '0' && *s <= '9') || strchr(extra, *s) != NULL))
			return false;
	return true;
}

/* Decimal digits only (no sign, no spaces, no hex), within [min, max]. */
int
parse_long(const char *s, long min, long max, long *out)
{
	long		v = 0;
	size_t		n;

	if (s == NULL || s[0] == '\0' || strlen(s) > 18)
		return -1;
	for (n = 0; s[n] != '\0'; n++)
	{
		if (s[n] < '0' || s[n] > '9')
			return -1;
		v = v * 10 + (s[n] - '0');
	}
	if (v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int
parse_port(const char *s, uint16_t *out)
{
	long		v;

	if (parse_long(s, 1, 65535, &v) != 0)
		return -1;
	*out = (uint16_t) v;
	return 0;
}

/*
 * Dotted quad only: inet_pton(AF_INET) already refuses the short and octal
 * forms that inet_aton would take, and we refuse 0.0.0.0 and broadcast.
 */
int
parse_ipv4(const char *s, struct in_addr *out)
{
	struct in_addr a;

	if (s == NULL || strlen(s) > 15 || inet_pton(AF_INET, s, &a) != 1)
		return -1;
	if (a.s_addr == htonl(INADDR_ANY) || a.s_addr == htonl(INADDR_BROADCAST))
		return -1;
	*out = a;
	return 0;
}

/*
 * Split a line on single spaces into at most maxwords words, in place.
 * Used for SSH_ORIGINAL_COMMAND: every byte must be a name character or a
 * space, so quotes, tabs, newlines and shell metacharacters are refused
 * here rather than interpreted anywhere.  Returns the count, or -1.
 */
int
split_words(char *line, char **words, int maxwords)
{
	int			n = 0;
	char	   *p = line;

	if (strlen(line) > 256 || !plain_chars(line, "_.- "))
		return -1;
	while (*p)
	{
		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		if (n == maxwords)
			return -1;
		words[n++] = p;
		while (*p && *p != ' ')
			p++;
		if (*p)
			*p++ = '\0';
	}
	return n;
}

/* An LSN as PostgreSQL prints it: HEX/HEX, 1 to 8 digits each, nothing else. */
bool
parse_lsn(const char *s, uint64_t *lsn)
{
	const char *slash = strchr(s, '/');
	size_t		hi_len = slash ? (size_t) (slash - s) : 0;
	size_t		lo_len = slash ? strlen(slash + 1) : 0;

	if (hi_len < 1 || hi_len > 8 || lo_len < 1 || lo_len > 8 ||
		strspn(s, "0123456789ABCDEFabcdef") != hi_len ||
		strspn(slash + 1, "0123456789ABCDEFabcdef") != lo_len)
		return false;
	*lsn = (strtoull(s, NULL, 16) << 32) | strtoull(slash + 1, NULL, 16);
	return true;
}
