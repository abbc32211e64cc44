/*-------------------------------------------------------------------------
 *
 * kv.c
 *	  The one grammar of the programs' configuration files: a line is
 *	  blank, a comment ("#" to the end of the line), or "key = value".
 *	  A key is letters, digits and "_.-" (nat.conf's node.NAME holds a node
 *	  name); the value is the rest of the line with the
 *	  blanks around it taken off.  What a value may hold is the key's
 *	  business: most take one word (kv_one_word), so that a second word is
 *	  an error and never silently dropped.
 *
 *-------------------------------------------------------------------------
 */
#include "common.h"

#include <stdio.h>
#include <string.h>

#define BLANKS " \t\r"

static char *
trim(char *s)
{
	char	   *end;

	s += strspn(s, BLANKS);
	end = s + strlen(s);
	while (end > s && strchr(BLANKS, end[-1]) != NULL)
		*--end = '\0';
	return s;
}

/*
 * The next key = value line of the NUL-terminated text at *cursor, which
 * is changed in place.  Returns 1 and fills kv, 0 at the end, -1 with err
 * said (the line's number in kv->lineno).
 */
int
kv_next(char **cursor, struct kv_line *kv, char *err, size_t errlen)
{
	while (**cursor != '\0')
	{
		char	   *line = *cursor;
		char	   *eol = strchr(line, '\n');
		char	   *eq;
		char	   *key;

		*cursor = eol ? eol + 1 : line + strlen(line);
		if (eol)
			*eol = '\0';
		kv->lineno++;
		line[strcspn(line, "#")] = '\0';
		line = trim(line);
		if (*line == '\0')
			continue;
		if ((eq = strchr(line, '=')) == NULL)
		{
			snprintf(err, errlen, "line %d: expected key = value", kv->lineno);
			return -1;
		}
		*eq = '\0';
		key = trim(line);
		if (*key == '\0' || !plain_chars(key, "_.-"))
		{
			snprintf(err, errlen, "line %d: invalid key \"%.40s\"", kv->lineno, key);
			return -1;
		}
		kv->key = key;
		kv->value = trim(eq + 1);
		return 1;
	}
	return 0;
}

/* A value of one word: not empty, no blank inside. */
bool
kv_one_word(const char *value)
{
	return value[0] != '\0' && strpbrk(value, BLANKS) == NULL;
}
