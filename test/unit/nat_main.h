/*-------------------------------------------------------------------------
 *
 * nat_main.h
 *	  For the unit tests of barman_ha_nat: its main.c included (its static
 *	  functions and the error line it keeps until its exit), its main
 *	  renamed, and with_error to read that line as the program would say it.
 *
 *-------------------------------------------------------------------------
 */
#ifndef BHA_UNIT_NAT_MAIN_H
#define BHA_UNIT_NAT_MAIN_H

#define main nat_main
#include "../../nat/main.c"
#undef main
#include "tap.h"

/* expr's value; barman_ha_nat's error line (said at its exit) into the array buf */
#define with_error(buf, expr) \
	({ \
		report_last[0] = '\0'; \
		__typeof__(expr) err_r_ = (expr); \
		snprintf((buf), sizeof(buf), report_last[0] ? PROG ": %s\n" : "%s", report_last); \
		err_r_; \
	})

#endif							/* BHA_UNIT_NAT_MAIN_H */
