/*-------------------------------------------------------------------------
 *
 * dl.c
 *	  Libraries the helper loads with dlopen instead of linking: libpq,
 *	  only in children that have dropped root (pq.c), and
 *	  libnetfilter_conntrack, only when there are flows to look at
 *	  (conntrack.c).  A setuid process ignores LD_LIBRARY_PATH, so a soname
 *	  resolves exactly as it would for a linked library.
 *
 *-------------------------------------------------------------------------
 */
#include "helper.h"

#include <dlfcn.h>
#include <stdio.h>

/*
 * Once per process: dlopen soname and fill every pointer of syms, up to the
 * entry without a name.  Returns 0, or -1 with the reason in err (and the
 * library closed again if a symbol lacks; a later call tries again).
 */
int
dl_load(const char *soname, const struct dl_sym *syms, char *err, size_t errlen)
{
	void	   *h;

	if (*syms[0].ptr != NULL)
		return 0;
	if ((h = dlopen(soname, RTLD_NOW | RTLD_LOCAL)) == NULL)
	{
		snprintf(err, errlen, "cannot load %s: %s", soname, dlerror());
		return -1;
	}
	for (const struct dl_sym *s = syms; s->name != NULL; s++)
	{
		if ((*s->ptr = dlsym(h, s->name)) == NULL)
		{
			snprintf(err, errlen, "%s lacks a symbol: %s", soname, dlerror());
			*syms[0].ptr = NULL;
			dlclose(h);
			return -1;
		}
	}
	return 0;
}
