/*-------------------------------------------------------------------------
 *
 * fuzz_parsers.c
 *	  libFuzzer target over everything that parses outside input: the
 *	  configuration parser, the SSH_ORIGINAL_COMMAND splitter and the
 *	  name, number and address parsers.  Built by `make fuzz` with clang,
 *	  -fsanitize=fuzzer,address,undefined; never part of the helper.
 *
 *-------------------------------------------------------------------------
 */
#include "helper.h"

#include <stdlib.h>
#include <string.h>

/* The parsers report through these; the fuzzer wants silence. */
void
errorf(const char *fmt,...)
{
	(void) fmt;
}

void
logmsg(int prio, const char *fmt,...)
{
	(void) prio;
	(void) fmt;
}

void
step(const char *name, const char *result, double ms, const char *fmt,...)
{
	(void) name;
	(void) result;
	(void) ms;
	(void) fmt;
}

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct config cfg;
	char	   *buf = malloc(size + 1);
	char	   *words[MAX_ARGS];
	struct in_addr a;
	long		l;
	uint16_t	port;

	memcpy(buf, data, size);
	buf[size] = '\0';			/* the helper refuses NUL bytes before parsing */

	(void) valid_name(buf);
	(void) parse_long(buf, 1, 0x7fffffffL, &l);
	(void) parse_port(buf, &port);
	(void) parse_ipv4(buf, &a);
	(void) split_words(buf, words, MAX_ARGS);	/* changes buf */

	memcpy(buf, data, size);
	buf[size] = '\0';
	(void) config_parse(&cfg, buf, "/fuzz/helper.conf");
	free(buf);
	return 0;
}
