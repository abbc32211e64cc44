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

/*
 * JSON as Barman's `-f json` writes it (RFC 8259), walked without building
 * anything: the string at a path of object keys.  Nesting is bounded;
 * strings are decoded (escapes, \u as UTF-8, surrogate pairs joined; NUL
 * refused).
 */
#define JSON_MAX_DEPTH	32

struct json_walk
{
	const char *s;
	const char *const *path;	/* the keys still to follow */
	int			npath;
	char	   *out;
	size_t		len;
	bool		found;
};

static void
json_ws(struct json_walk *w)
{
	w->s += strspn(w->s, " \t\r\n");
}

static int
json_hex4(const char *s)
{
	int			v = 0;

	for (int i = 0; i < 4; i++)
	{
		int			c = (unsigned char) s[i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
			v |= (c | 0x20) - 'a' + 10;
		else
			return -1;
	}
	return v;
}

/* The code point of the escape after a backslash at *s, or -1; *s moves past it. */
static long
json_escape(const char **s)
{
	const char *p = *s;
	long		hi, lo;

	*s += 1;
	switch (*p)
	{
		case '"':
		case '\\':
		case '/':
			return *p;
		case 'b':
			return '\b';
		case 'f':
			return '\f';
		case 'n':
			return '\n';
		case 'r':
			return '\r';
		case 't':
			return '\t';
		case 'u':
			break;
		default:
			return -1;
	}
	hi = json_hex4(p + 1);
	*s += 4;
	if (hi <= 0 || (hi >= 0xDC00 && hi <= 0xDFFF))
		return -1;
	if (hi < 0xD800 || hi > 0xDBFF)
		return hi;
	if (p[5] != '\\' || p[6] != 'u' || (lo = json_hex4(p + 7)) < 0xDC00 || lo > 0xDFFF)
		return -1;
	*s += 6;
	return 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
}

/* A string at w->s, decoded into out (len bytes with its NUL) unless out is NULL. */
static bool
json_string(struct json_walk *w, char *out, size_t len)
{
	size_t		n = 0;

	if (*w->s++ != '"')
		return false;
	for (;;)
	{
		long		c = (unsigned char) *w->s++;
		char		u[4];
		int			k = 1;

		if (c == '"')
			break;
		if (c < 0x20)			/* a control character, or the text's end */
			return false;
		if (c != '\\')
			u[0] = (char) c;	/* bytes of UTF-8 pass as they are */
		else if ((c = json_escape(&w->s)) < 0)
			return false;
		else if (c < 0x80)
			u[0] = (char) c;
		else if (c < 0x800)
		{
			u[0] = 0xC0 | (c >> 6);
			u[1] = 0x80 | (c & 0x3F);
			k = 2;
		}
		else if (c < 0x10000)
		{
			u[0] = 0xE0 | (c >> 12);
			u[1] = 0x80 | ((c >> 6) & 0x3F);
			u[2] = 0x80 | (c & 0x3F);
			k = 3;
		}
		else
		{
			u[0] = 0xF0 | (c >> 18);
			u[1] = 0x80 | ((c >> 12) & 0x3F);
			u[2] = 0x80 | ((c >> 6) & 0x3F);
			u[3] = 0x80 | (c & 0x3F);
			k = 4;
		}
		if (out != NULL && n + k < len)
			memcpy(out + n, u, k);
		n += k;
	}
	if (out == NULL)
		return true;
	if (n >= len)
		return false;
	out[n] = '\0';
	return true;
}

static bool
json_value(struct json_walk *w, int depth, bool on_path)
{
	const char *const *path = w->path;
	int			npath = w->npath;
	bool		target = on_path && npath == 0;

	json_ws(w);
	if (depth > JSON_MAX_DEPTH)
		return false;
	if (*w->s == '"')
	{
		if (target && !json_string(w, w->out, w->len))
			return false;
		w->found |= target;
		return target || json_string(w, NULL, 0);
	}
	if (*w->s == '{' || *w->s == '[')
	{
		char		close = *w->s == '{' ? '}' : ']';

		w->s++;
		json_ws(w);
		if (*w->s == close)
			return w->s++, true;
		for (;;)
		{
			bool		follow = false;

			if (close == '}')
			{
				char		key[256];

				if (!json_string(w, key, sizeof(key)))
					return false;
				json_ws(w);
				if (*w->s++ != ':')
					return false;
				follow = on_path && npath > 0 && strcmp(key, path[0]) == 0;
			}
			w->path = path + follow;
			w->npath = npath - follow;
			if (!json_value(w, depth + 1, follow))
				return false;
			json_ws(w);
			if (*w->s == close)
				return w->s++, true;
			if (*w->s++ != ',')
				return false;
			json_ws(w);
		}
	}
	if (strncmp(w->s, "true", 4) == 0 || strncmp(w->s, "null", 4) == 0)
		return w->s += 4, true;
	if (strncmp(w->s, "false", 5) == 0)
		return w->s += 5, true;
	if (*w->s == '-' || (*w->s >= '0' && *w->s <= '9'))
	{
		w->s += strspn(w->s, "-+.eE0123456789");
		return true;
	}
	return false;
}

/*
 * The string at text's keys k1 then k2, into out (len): 0, or -1 when text
 * from its first line that opens an object is no JSON or has no string
 * there.  Lines before it (a warning on stderr) are passed over.
 */
int
json_string_at(const char *text, const char *k1, const char *k2, char *out, size_t len)
{
	const char *keys[2] = {k1, k2};
	struct json_walk w = {.path = keys,.npath = 2,.out = out,.len = len};

	for (w.s = text; *w.s != '{'; w.s++)
	{
		w.s = strchr(w.s, '\n');
		if (w.s == NULL)
			return -1;
	}
	if (!json_value(&w, 0, true) || !w.found)
		return -1;
	return 0;
}
