/*-------------------------------------------------------------------------
 *
 * fuzz_orchestrator.c
 *	  libFuzzer target over every parser of bytes the orchestrator does not
 *	  choose: SSH_ORIGINAL_COMMAND (split_words), orchestrator.conf, its own
 *	  record, a server's replies (timeline, TIMELINE_HISTORY content,
 *	  wal_segment_size, LSN) and Barman's JSON.  The first byte picks the parser.
 *
 *	  make fuzz && ./fuzz_orchestrator -max_total_time=60 fuzz/corpus
 *
 *-------------------------------------------------------------------------
 */
#include "orchestrator.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* output.c's settings, silent here: common/report.c keeps its line */
const char	report_program[] = "fuzz_orchestrator";
const bool	report_keep = true;
const bool	report_syslog = false;

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
	char	   *buf,
			   *words[MAX_ARGS];
	struct tl_history h;
	struct ostate st;
	unsigned	tli;
	uint64_t	lsn;
	char		dir[64];

	if (size < 1 || size > 70000)
		return 0;
	buf = malloc(size);
	memcpy(buf, data + 1, size - 1);
	buf[size - 1] = '\0';
	switch (data[0] % 8)
	{
		case 0:
			split_words(buf, words, MAX_ARGS);
			break;
		case 1:
			config_parse(&cfg, buf, "fuzz");
			break;
		case 2:
			ostate_parse(buf, &st);
			break;
		case 3:
			if (history_parse(buf, &h) == 0 && h.n > MAX_TLI)
				abort();
			break;
		case 4:
			if (parse_timeline(buf, &tli) == 0 && (tli == 0 || tli > BHA_TIMELINE_MAX))
				abort();
			break;
		case 5:
			{
				uint64_t	segsz = parse_segment_size(buf);

				if (segsz != 0 && (segsz < (1 << 20) || (segsz & (segsz - 1)) != 0))
					abort();
				break;
			}
		case 6:
			parse_lsn(buf, &lsn);
			break;
		case 7:
			if (json_string_at(buf, "pg", "streaming_wals_directory", dir, sizeof(dir)) == 0 &&
				strlen(dir) >= sizeof(dir))
				abort();
			break;
	}
	free(buf);
	return 0;
}
