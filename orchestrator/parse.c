/*-------------------------------------------------------------------------
 *
 * parse.c
 *	  Strict parsers of the orchestrator's own inputs: SSH_ORIGINAL_COMMAND
 *	  and positions in a server's replies (numbers, addresses and paths:
 *	  common/parse.c).  Whitelists and explicit bounds only; nothing here
 *	  allocates.
 *
 *-------------------------------------------------------------------------
 */
#include "orchestrator.h"

#include <stdlib.h>
#include <string.h>

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
