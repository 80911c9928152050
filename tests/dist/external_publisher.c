/* SPDX-License-Identifier: MIT */
/*
 * external_publisher.c - the embedded publisher and the intake client as
 * a VMM links them: <kvmstats/publisher.h> and <kvmstats/intake.h>, built
 * with `pkg-config --cflags --libs kvmstats-publisher` outside the tree.
 * It starts a publisher, refuses to publish a VM from a pipe (not a stats
 * fd: a clear error, no segment), finds no daemon at a socket path that
 * does not exist, and stops.  Exit: 0, 1 on any unexpected answer.
 */
#define _POSIX_C_SOURCE 200809L	/* pipe() under -std=c11 */
#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include <kvmstats/intake.h>
#include <kvmstats/publisher.h>

int
main(void)
{
	struct kvmstats_publisher *pub;
	struct kvmstats_error err;
	struct kvmstats_vm *vm;
	struct kvmstats_fd fd;
	int p[2], rc;

	if (kvmstats_publisher_create(NULL, &pub, &err) < 0) {
		fprintf(stderr, "external_publisher: %s\n", err.msg);
		return 1;
	}
	if (pipe(p) < 0)
		return 1;
	fd = (struct kvmstats_fd){ p[0], KVMSTATS_TARGET_VM, 0, NULL };
	rc = kvmstats_publisher_add_vm(pub, "external-pub", &fd, 1, &vm, &err);
	kvmstats_publisher_destroy(&pub);
	if (rc >= 0) {
		fprintf(stderr, "external_publisher: a pipe was published as a VM\n");
		return 1;
	}
	printf("refused as it should be: %s\n", err.msg);
	rc = kvmstats_intake_connect("/nonexistent/kvmstats/intake.sock", &err);
	if (rc != -ENOENT) {
		fprintf(stderr, "external_publisher: connect to nothing gave %d\n", rc);
		return 1;
	}
	printf("no daemon, as it should be: %s\n", err.msg);
	return 0;
}
