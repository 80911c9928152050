// SPDX-License-Identifier: MIT
/*
 * fuzz_qmp.c - libFuzzer harness: any bytes as what a QMP client sends to
 * kvmstats qmp.
 *
 * The bytes go through the framer in pieces whose sizes the input's first
 * byte chooses (a client's writes arrive split anywhere), and every
 * message found goes to the dispatcher of one session, which starts
 * unnegotiated and may negotiate on the way.  The VM source answers with a
 * segment of the tests' synthetic VM (2 vCPUs: scalars and histograms,
 * tests/lib/synth_vm.h) published once into a private directory, or, when the
 * input's second byte is odd, says the VM is gone.  Each reply is checked:
 * one line ending in CR LF, valid JSON, an object with exactly one of
 * "return" or "error" (and maybe "id"), an error with a class and desc.
 */
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "kvmstats/reader.h"
#include "qmp_dispatch.h"
#include "qmp_framer.h"
#include "synth_vm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[] = "/tmp/kvmstats-fuzz-qmp-XXXXXX";
static struct ks_engine *engine;
static struct kvmstats_segment *seg;
static bool vm_gone;

static void
quiet(const char *line)
{
	(void)line;
}

static int
get(void *arg, bool values, const struct kvmstats_segment **segp, uint64_t **cut, char *why,
    size_t len)
{
	size_t n;

	(void)arg;
	if (vm_gone || !seg) {
		snprintf(why, len, "VM 'fuzz' has ended");
		return -1;
	}
	*segp = seg;
	if (values) {
		n = kvmstats_cut_words(seg);
		*cut = calloc(n + 1, sizeof(**cut));
		if (!*cut || kvmstats_read_cut(seg, *cut, n, NULL) < 0) {
			free(*cut);
			*cut = NULL;
			snprintf(why, len, "no values");
			return -1;
		}
	}
	return 0;
}

static const struct ks_qmp_source src = { get, NULL };

static void
check_reply(const char *buf, size_t len)
{
	json_error_t err;
	json_t *r, *e;
	size_t members;

	if (len < 2 || buf[len - 2] != '\r' || buf[len - 1] != '\n' ||
	    memchr(buf, '\n', len - 1) != NULL)
		abort();
	r = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &err);
	if (!r || !json_is_object(r))
		abort();
	members = json_object_size(r) - (json_object_get(r, "id") != NULL);
	e = json_object_get(r, "error");
	if (members != 1 || (!e && !json_object_get(r, "return")))
		abort();
	if (e && (!json_is_string(json_object_get(e, "class")) ||
		  !json_is_string(json_object_get(e, "desc")) || json_object_size(e) != 2))
		abort();
	json_decref(r);
}

static void
answer(struct ks_qmp_session *s, const char *msg, size_t len)
{
	char *buf = NULL;
	size_t blen = 0;
	FILE *f = open_memstream(&buf, &blen);

	if (!f)
		abort();
	ks_qmp_handle(s, msg, len, f);
	if (fclose(f) != 0)
		abort();
	check_reply(buf, blen);
	free(buf);
}

static void
setup(void)
{
	struct ks_engine_config cfg;
	struct kvmstats_attach_opts opts;
	struct kvmstats_error err = { 0 };
	struct synth_vm sv;

	if (mkdtemp(dir) == NULL)
		abort();
	ks_engine_config_init(&cfg);
	cfg.log = quiet;
	cfg.dir = dir;
	if (ks_engine_create(&cfg, &engine, &err) < 0 ||
	    synth_vm_init(&sv, "fuzz", 2, UINT32_MAX, 0) < 0 ||
	    ks_engine_add_vm(engine, &sv.def, NULL, &err) < 0)
		abort();
	synth_vm_clear(&sv);
	if (ks_engine_sweep(engine) < 0)
		abort();
	kvmstats_attach_opts_init(&opts);
	opts.dir = dir;
	if (kvmstats_attach("fuzz", &opts, &seg, &err) < 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	struct ks_qmp_session s;
	struct ks_qmp_framer fr;
	size_t step, avail = 0, pos = 0, start, end;

	if (!ready) {
		setup();
		ready = true;
	}
	if (size < 2)
		return 0;
	step = (size_t)data[0] % 17 + 1;
	vm_gone = data[1] & 1;
	data += 2;
	size -= 2;
	ks_qmp_session_init(&s, &src);
	ks_qmp_framer_init(&fr);
	while (avail < size) {
		avail = avail + step < size ? avail + step : size;
		while (ks_qmp_framer_next(&fr, (const char *)data, avail, &pos, &start, &end))
			answer(&s, (const char *)data + start, end - start);
		if (fr.too_deep)
			break;	/* the server closes such a client */
	}
	return 0;
}
