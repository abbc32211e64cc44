/*-------------------------------------------------------------------------
 *
 * fuzz_nat.c
 *	  libFuzzer target over everything barman_ha_nat parses from outside:
 *	  nat.conf (nat_conf_parse), the state file (state_parse) and argv
 *	  (parse_nat_argv, main.c included).  The first byte picks the parser; for argv the rest
 *	  is split into words at NUL bytes.  Built by `make fuzz` with clang,
 *	  ASan and UBSan; never part of the program.
 *
 *-------------------------------------------------------------------------
 */
#define main nat_main			/* parse_nat_argv is static in main.c */
#include "../main.c"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct nat_config cfg;
	struct state st;
	struct request req;
	char	   *argv[10] = {"barman_ha_nat"},
			   *buf;
	int			argc = 1;

	if (size == 0 || size > 70000 || (buf = malloc(size)) == NULL)
		return 0;
	memcpy(buf, data + 1, size - 1);
	buf[size - 1] = '\0';
	switch (data[0] % 3)
	{
		case 0:
			(void) nat_conf_parse(&cfg, buf, "/fuzz/nat.conf");
			break;
		case 1:
			(void) state_parse(buf, &st);
			break;
		default:
			for (char *p = buf; argc < 9 && p < buf + size - 1; p += strlen(p) + 1)
				argv[argc++] = p;
			(void) parse_nat_argv(argc, argv, &req);
	}
	free(buf);
	return 0;
}
