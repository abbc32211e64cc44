/*-------------------------------------------------------------------------
 *
 * parse.c
 *	  Strict parsers for everything that reaches the helper from outside:
 *	  command-line words, configuration values and SSH_ORIGINAL_COMMAND.
 *	  Whitelists and explicit bounds only; nothing here allocates.
 *
 *-------------------------------------------------------------------------
 */
#include "helper.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

const char *const endpoint_names[EP_COUNT] = {"barman", "app"};

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

/* Node, server and user names: [A-Za-z0-9_.-]{1,63}, not starting with '-'. */
bool
valid_name(const char *s)
{
	return s != NULL && s[0] != '\0' && s[0] != '-' &&
		strlen(s) <= NAME_MAX_LEN && plain_chars(s, "_.-");
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
