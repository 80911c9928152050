/* SPDX-License-Identifier: MIT */
/*
 * liveness.c - is the publisher there, and has the name moved on?
 * (kvmstats_liveness(), kvmstats_follow(); the rules are ks_liveness.h's.)
 *
 * These make system calls, unlike the reads: one fcntl() to ask for the
 * liveness lock, one fstatat() to see what the name holds now.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "ks_err.h"
#include "ks_liveness.h"
#include "ks_reader.h"
#include "ks_shmdir.h"

int
kvmstats_liveness(const struct kvmstats_segment *seg, struct kvmstats_liveness *lv)
{
	const struct kvmstats_segment_info *in;
	struct kvmstats_status st;
	uint64_t now, since;

	CHECK_SEGMENT(seg);
	if (lv == NULL)
		return -EINVAL;
	in = &seg->info;
	kvmstats_status(seg, &st);
	now = kvmstats_now_ns();
	since = st.sweep != 0 ? st.heartbeat_ns : in->created_mono_ns;
	lv->age_ns = now > since ? now - since : 0;
	lv->stale_after_ns = ks_stale_after_ns(in->poll_period_ns);
	lv->lock = -1;
	switch (st.state) {
	case KVMSTATS_STATE_ENDED:
		lv->health = KVMSTATS_HEALTH_ENDED;
		return 0;
	case KVMSTATS_STATE_SUPERSEDED:
		lv->health = KVMSTATS_HEALTH_SUPERSEDED;
		return 0;
	case KVMSTATS_STATE_LIVE:
		break;
	default:
		lv->health = KVMSTATS_HEALTH_BROKEN;
		return 0;
	}
	/* ABI 1.0 publishers hold no lock: then only the heartbeat can tell. */
	if (in->abi_minor >= 1) {
		int held = ks_liveness_held(seg->fd);

		lv->lock = held < 0 ? -1 : held;
	}
	if (lv->lock == 0)
		lv->health = KVMSTATS_HEALTH_DEAD;
	else if (lv->age_ns > lv->stale_after_ns)
		lv->health = KVMSTATS_HEALTH_STALE;
	else
		lv->health = KVMSTATS_HEALTH_LIVE;
	return 0;
}

int
kvmstats_follow(struct kvmstats_segment **segp, struct kvmstats_error *err)
{
	struct kvmstats_segment *seg;
	struct stat now;
	char path[4096];
	int rc;

	if (segp == NULL)
		return ks_err(err, -EINVAL, "follow: no segment");
	CHECK_SEGMENT(*segp);
	seg = *segp;
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", seg->dir, seg->file) >= sizeof(path))
		return ks_err(err, -ENAMETOOLONG, "follow: path too long");
	/* The name still holds our file, or nothing: nothing to follow. */
	if (fstatat(AT_FDCWD, path, &now, AT_SYMLINK_NOFOLLOW) < 0 ||
	    (now.st_dev == seg->dev && now.st_ino == seg->ino))
		return 0;
	rc = kvmstats_reattach(segp, err);
	return rc < 0 ? rc : 1;
}
