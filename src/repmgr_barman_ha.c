/*-------------------------------------------------------------------------
 *
 * repmgr_barman_ha.c
 *		Entry point of the repmgr_barman_ha extension: settings, shared
 *		memory and the background workers are set up here when the library
 *		is loaded by shared_preload_libraries.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "storage/ipc.h"

#include "barman_ha.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void
shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	barman_ha_shmem_request();
}

static void
shmem_startup(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	barman_ha_shmem_startup();
}

void
_PG_init(void)
{
	if (IsBinaryUpgrade)
		return;

	if (!process_shared_preload_libraries_in_progress)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("repmgr_barman_ha can only be loaded via shared_preload_libraries"),
				 errhint("Add repmgr_barman_ha to shared_preload_libraries and restart the server.")));

	barman_ha_define_gucs();

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = shmem_startup;

	barman_ha_register_workers();
}
