/* SPDX-License-Identifier: MIT */
/* qemu_name.c - a VM name from QEMU's -name option (qemu_name.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kvmstats/reader.h"
#include "ks_shmdir.h"
#include "qemu_name.h"

/* A QEMU command line longer than this is not read further (Linux: ARG_MAX). */
#define CMDLINE_MAX	(256u * 1024)

/*
 * The guest name in one -name argument, or 0.  Elements are split on ','
 * with ",," standing for a comma inside a value; the first element is the
 * guest name when it has no '=' (QEMU's implied key); a key given twice
 * keeps its last value, as QEMU's option parser does.  Elements of other
 * keys may be of any length: they are skipped, not copied.
 */
static int
guest_of_value(const char *v, char *name, size_t name_len)
{
	bool first = true;
	int found = 0;

	while (*v != '\0') {
		char elem[KVMSTATS_VM_NAME_MAX + 8];	/* "guest=" and a name, or more: cut */
		size_t n = 0, full = 0;
		const char *eq, *value;

		for (; *v != '\0'; v++, full++) {
			if (*v == ',' && v[1] == ',') {
				v++;
			} else if (*v == ',') {
				v++;
				break;
			}
			if (n + 1 < sizeof(elem))
				elem[n++] = *v;
		}
		elem[n] = '\0';
		eq = strchr(elem, '=');
		value = NULL;
		if (first && eq == NULL)
			value = elem;		/* the implied "guest=" */
		else if (eq != NULL && eq - elem == 5 && strncmp(elem, "guest", 5) == 0)
			value = eq + 1;
		first = false;
		if (value == NULL)
			continue;
		if (full >= sizeof(elem) || strlen(value) >= name_len)
			return -E2BIG;
		strcpy(name, value);
		found = 1;
	}
	return found;
}

int
ks_qemu_name_parse(const char *args, size_t len, char *name, size_t name_len,
		   char *why, size_t why_len)
{
	const char *end = args + len, *a = args;
	int found = 0;

	while (a < end) {
		const char *next = memchr(a, '\0', (size_t)(end - a));
		int r;

		if (next == NULL)
			break;			/* a cut last argument is not an option */
		next++;
		if ((strcmp(a, "-name") == 0 || strcmp(a, "--name") == 0) && next < end &&
		    memchr(next, '\0', (size_t)(end - next)) != NULL) {
			r = guest_of_value(next, name, name_len);
			if (r == -E2BIG) {
				snprintf(why, why_len, "QEMU's -name is longer than %zu bytes",
					 name_len - 1);
				return -EINVAL;
			}
			if (r == 1)
				found = 1;	/* the last -name wins */
			next += strlen(next) + 1;
		}
		a = next;
	}
	if (found && name[0] == '\0')
		found = 0;			/* "-name guest=" names nothing */
	if (found && ks_vm_name_fault(name, why, why_len) != NULL)
		return -EINVAL;
	return found;
}

int
ks_qemu_name_of_pid(pid_t pid, char *name, size_t name_len, char *why, size_t why_len)
{
	char path[64], *buf;
	size_t len = 0;
	ssize_t n;
	int fd, r;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;			/* no command line: no name from it */
	buf = malloc(CMDLINE_MAX);
	if (buf == NULL) {
		close(fd);
		return 0;
	}
	while (len < CMDLINE_MAX && (n = read(fd, buf + len, CMDLINE_MAX - len)) > 0)
		len += (size_t)n;
	close(fd);
	r = ks_qemu_name_parse(buf, len, name, name_len, why, why_len);
	free(buf);
	return r;
}
