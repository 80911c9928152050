/* SPDX-License-Identifier: MIT */
/* intake_wire.c - what server and client share beyond the messages. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "intake_wire.h"
#include "ks_err.h"
#include "ks_text.h"

int
ks_intake_addr(struct sockaddr_un *sa, const char *path, struct kvmstats_error *err)
{
	char esc[256];

	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (path == NULL || path[0] == '\0')
		return ks_err(err, -EINVAL, "intake: no socket path");
	if (strlen(path) >= sizeof(sa->sun_path))
		return ks_err(err, -ENAMETOOLONG, "intake: socket path %s is longer than %zu "
			      "bytes", ks_text_escape(esc, sizeof(esc), path),
			      sizeof(sa->sun_path) - 1);
	memcpy(sa->sun_path, path, strlen(path) + 1);
	return 0;
}
