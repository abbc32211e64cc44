/*-------------------------------------------------------------------------
 *
 * parse.c
 *	  Bounded parsing of words that come from outside: command lines,
 *	  configuration values, SSH_ORIGINAL_COMMAND.  Whitelists and explicit
 *	  bounds only.  The parse_* functions return 0 and set *out, or return
 *	  -1 and leave *out as it was.
 *
 *-------------------------------------------------------------------------
 */
#include "common.h"

#include <arpa/inet.h>
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

/*
 * An absolute path of plain characters, shorter than 256 bytes, with no
 * ".." and a name after its last '/'.
 */
bool
valid_path(const char *s)
{
	size_t		len = strlen(s);

	return s[0] == '/' && len < 256 && s[len - 1] != '/' && strstr(s, "..") == NULL &&
		plain_chars(s, "_./-");
}

/* Decimal digits only (no sign, no blank, no hex), within [min, max]. */
int
parse_long(const char *s, long min, long max, long *out)
{
	long		v = 0;

	if (s[0] == '\0' || strlen(s) > 18 || strspn(s, "0123456789") != strlen(s))
		return -1;
	for (; *s; s++)
		v = v * 10 + (*s - '0');
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
 * A dotted quad: inet_pton refuses the short and octal forms inet_aton
 * takes; 0.0.0.0 and the broadcast address are refused too.
 */
int
parse_ipv4(const char *s, struct in_addr *out)
{
	struct in_addr a;

	if (inet_pton(AF_INET, s, &a) != 1 || a.s_addr == htonl(INADDR_ANY) ||
		a.s_addr == htonl(INADDR_BROADCAST))
		return -1;
	*out = a;
	return 0;
}
