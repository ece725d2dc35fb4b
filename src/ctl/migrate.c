/* skiff ctl migrate: starts a live migration and follows it to its end. */
#include "ctl_parts.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

/*
 * Set by SIGINT while migrate follows a migration, so that it cancels the migration before
 * leaving. A global because a signal handler reaches nothing else.
 */
static volatile sig_atomic_t interrupted;

static void note_interrupt(int signal_number)
{
	(void)signal_number;
	interrupted = 1;
}

/* One answer to GET /migrate; the numbers it lacks read as 0. */
struct migrate_report {
	const char *phase, *destination, *error; /* point into the answer */
	uint64_t bytes_sent, remaining, rate, dirty_rate, passes, throttle;
	uint64_t total_us, downtime_us;
	bool timed; /* total_us and downtime_us are there (completed) */
};

/* What following a migration keeps from one answer to the next. */
struct migrate_watch {
	bool bar;	  /* stderr is a terminal: a bar redrawn in place */
	bool phase_lines; /* stderr is not (and no --json): a line per phase instead */
	json_t *answer;	  /* the last answer, which report points into */
	struct migrate_report report;
	/* The current pass (the RAM pass or one dirty pass), for its percent and rate. */
	char pass_phase[32];
	uint64_t pass, pass_bytes, bytes_at_start, started_us;
	int bar_len; /* the bar's width on screen, to blank it */
};

static uint64_t now_us(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)now.tv_sec * 1000000 + (uint64_t)now.tv_nsec / 1000;
}

/* Binary units, as guest RAM is sized: "1.5 GiB". */
static const char *format_bytes(uint64_t bytes, char *text, size_t size)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB" };
	double value = bytes;
	unsigned unit = 0;

	if (bytes < 1024) {
		snprintf(text, size, "%" PRIu64 " B", bytes);
		return text;
	}
	for (value /= 1024; value >= 1024 && unit + 1 < sizeof(units) / sizeof(units[0]); unit++)
		value /= 1024;
	snprintf(text, size, "%.1f %s", value, units[unit]);
	return text;
}

static const char *format_us(uint64_t us, char *text, size_t size)
{
	if (us < 1000)
		snprintf(text, size, "%" PRIu64 " us", us);
	else if (us < 1000000)
		snprintf(text, size, "%.1f ms", us / 1e3);
	else
		snprintf(text, size, "%.1f s", us / 1e6);
	return text;
}

static uint64_t report_number(const json_t *answer, const char *key)
{
	json_int_t n = json_integer_value(json_object_get(answer, key));

	return n > 0 ? (uint64_t)n : 0;
}

static bool phase_is(const struct migrate_report *report, const char *phase)
{
	return !strcmp(report->phase, phase);
}

static bool phase_ended(const struct migrate_report *report)
{
	return phase_is(report, "completed") || phase_is(report, "failed") ||
	       phase_is(report, "cancelled");
}

/* Takes answer (a reference) as the watch's last one, once it proves to be one. */
static int watch_take(struct migrate_watch *w, json_t *answer)
{
	const char *phase = json_string_value(json_object_get(answer, "phase"));

	if (!phase) {
		fprintf(stderr, "skiff ctl: migrate: the answer to GET /migrate has no phase\n");
		json_decref(answer);
		return -EPROTO;
	}
	json_decref(w->answer);
	w->answer = answer;
	w->report = (struct migrate_report){
		.phase = phase,
		.destination = json_string_value(json_object_get(answer, "destination")) ?: "?",
		.error = json_string_value(json_object_get(answer, "error")),
		.bytes_sent = report_number(answer, "bytes_sent"),
		.remaining = report_number(answer, "remaining_bytes"),
		.rate = report_number(answer, "rate_bps"),
		.dirty_rate = report_number(answer, "dirty_rate_bps"),
		.passes = report_number(answer, "dirty_passes"),
		.throttle = report_number(answer, "throttle_percent"),
		.total_us = report_number(answer, "total_us"),
		.downtime_us = report_number(answer, "downtime_us"),
		.timed = json_is_integer(json_object_get(answer, "total_us")) &&
			 json_is_integer(json_object_get(answer, "downtime_us")),
	};
	return 0;
}

/*
 * Notes where a pass starts. The server says how much of a pass is left, not how much it
 * had: the most seen left stands for it (the RAM pass skips never-touched pages, so
 * ram_bytes would overstate it).
 */
static void watch_pass(struct migrate_watch *w)
{
	const struct migrate_report *r = &w->report;
	bool new_phase = strcmp(w->pass_phase, r->phase);
	char sent[32];

	if (new_phase || w->pass != r->passes) {
		snprintf(w->pass_phase, sizeof(w->pass_phase), "%s", r->phase);
		w->pass = r->passes;
		w->pass_bytes = 0;
		w->bytes_at_start = r->bytes_sent;
		w->started_us = now_us();
	}
	if (r->remaining > w->pass_bytes)
		w->pass_bytes = r->remaining;
	if (new_phase && w->phase_lines && !phase_ended(r))
		fprintf(stderr, "migrate: %s phase, %s sent\n", r->phase,
			format_bytes(r->bytes_sent, sent, sizeof(sent)));
}

/* The server's send rate, known once a pass has ended; before, what this pass shows. */
static uint64_t watch_rate(const struct migrate_watch *w)
{
	const struct migrate_report *r = &w->report;
	uint64_t us = now_us() - w->started_us;

	if (r->rate || !us || r->bytes_sent <= w->bytes_at_start)
		return r->rate;
	return (uint64_t)((double)(r->bytes_sent - w->bytes_at_start) * 1e6 / us);
}

/* The bar's text, kept to one terminal line: one that wraps cannot be redrawn in place. */
struct bar_line {
	char text[256];
	size_t len, limit;
	bool full; /* a piece was left out: so are those after it, less important */
};

static void bar_add(struct bar_line *line, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Adds a piece whole or not at all, but for a first piece too long for the line: cut. */
static void bar_add(struct bar_line *line, const char *fmt, ...)
{
	char piece[128];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(piece, sizeof(piece), fmt, ap);
	va_end(ap);
	if (line->full || n < 0)
		return;
	if ((size_t)n >= sizeof(piece))
		n = sizeof(piece) - 1;
	if (line->len + n > line->limit) {
		line->full = true;
		if (line->len)
			return;
		n = (int)line->limit;
	}
	memcpy(line->text + line->len, piece, n);
	line->len += n;
	line->text[line->len] = '\0';
}

static void bar_clear(struct migrate_watch *w)
{
	if (w->bar_len)
		fprintf(stderr, "\r%*s\r", w->bar_len, "");
	w->bar_len = 0;
}

/* "pass 3  [###########.....]  69%  495.9 MiB/s  ETA 22.8 ms  dirtied 80.0 MiB/s" */
static void bar_draw(struct migrate_watch *w)
{
	const struct migrate_report *r = &w->report;
	uint64_t rate = watch_rate(w), left = r->remaining, pass_bytes = w->pass_bytes;
	struct bar_line line = { .limit = 79 };
	char label[32], cells[17], a[32];
	struct winsize size;
	unsigned percent;

	if (!ioctl(STDERR_FILENO, TIOCGWINSZ, &size) && size.ws_col > 1)
		line.limit = size.ws_col - 1;
	if (line.limit > sizeof(line.text) - 1)
		line.limit = sizeof(line.text) - 1;
	if (phase_is(r, "ram") || phase_is(r, "dirty-passes")) {
		percent = pass_bytes > left ? (pass_bytes - left) * 100 / pass_bytes : 0;
		memset(cells, '.', sizeof(cells) - 1);
		memset(cells, '#', percent * (sizeof(cells) - 1) / 100);
		cells[sizeof(cells) - 1] = '\0';
		if (phase_is(r, "ram"))
			snprintf(label, sizeof(label), "RAM");
		else
			snprintf(label, sizeof(label), "pass %" PRIu64, r->passes);
		bar_add(&line, "%-7s [%s] %3u%%", label, cells, percent);
		/* In order of use, as a narrow terminal drops the last ones. */
		if (rate)
			bar_add(&line, "  %s/s", format_bytes(rate, a, sizeof(a)));
		if (rate)
			bar_add(&line, "  ETA %s",
				format_us((uint64_t)(left * 1e6 / rate), a, sizeof(a)));
		if (r->throttle)
			bar_add(&line, "  throttle %" PRIu64 "%%", r->throttle);
		if (r->dirty_rate)
			bar_add(&line, "  dirtied %s/s", format_bytes(r->dirty_rate, a, sizeof(a)));
	} else {
		bar_add(&line, "%s  %s sent",
			phase_is(r, "final") ? "final pass, the VM paused" : r->phase,
			format_bytes(r->bytes_sent, a, sizeof(a)));
	}
	/* Blanks what is left of a longer bar before. */
	fprintf(stderr, "\r%s%*s", line.text,
		w->bar_len > (int)line.len ? w->bar_len - (int)line.len : 0, "");
	w->bar_len = (int)line.len;
}

static int migrate_print_json(const struct migrate_watch *w, bool source_exited)
{
	json_t *answer = json_deep_copy(w->answer);
	int ret;

	if (!answer ||
	    (source_exited && json_object_set_new(answer, "source_exited", json_true()))) {
		json_decref(answer);
		fprintf(stderr, "skiff ctl: migrate: %s\n", strerror(ENOMEM));
		return -ENOMEM;
	}
	ret = print_json(answer, JSON_COMPACT);
	json_decref(answer);
	return ret;
}

/* The end, from the last answer; source_exited: the server went away after it. */
static int migrate_summary(struct ctl *ctl, struct migrate_watch *w, bool source_exited)
{
	const struct migrate_report *r = &w->report;
	char sent[32], total[32], downtime[32];
	const char *passes = r->passes == 1 ? "" : "es";
	int ret = 0;

	bar_clear(w);
	if (ctl->json)
		ret = migrate_print_json(w, source_exited);
	if (phase_is(r, "failed")) {
		fprintf(stderr, "skiff ctl: migrate: %s\n",
			r->error ?: "failed, for a reason the server did not give");
		return -CTL_REFUSED;
	}
	if (phase_is(r, "cancelled")) {
		fprintf(stderr, "skiff ctl: migrate: cancelled; the VM goes on at the source\n");
		return -CTL_REFUSED;
	}
	if (ret || ctl->json)
		return ret;
	format_bytes(r->bytes_sent, sent, sizeof(sent));
	if (source_exited)
		printf("migrated to %s: at least %s sent, %" PRIu64 " dirty pass%s; time and "
		       "downtime unknown (the source skiff exited before reporting them)\n",
		       r->destination, sent, r->passes, passes);
	else if (r->timed)
		printf("migrated to %s: %s sent in %s, downtime %s, %" PRIu64 " dirty pass%s\n",
		       r->destination, sent, format_us(r->total_us, total, sizeof(total)),
		       format_us(r->downtime_us, downtime, sizeof(downtime)), r->passes, passes);
	else
		printf("migrated to %s: %s sent, %" PRIu64 " dirty pass%s\n", r->destination, sent,
		       r->passes, passes);
	return 0;
}

/*
 * The socket went away. A source skiff exits once the destination runs the guest, and
 * stays when a migration fails, so after the final phase that is the migration completing;
 * before it, the answer that would say so may have been missed, or the skiff died.
 */
static int migrate_gone(struct ctl *ctl, struct migrate_watch *w)
{
	char when[64] = "right after the migration started";

	if (w->answer && phase_is(&w->report, "final"))
		return migrate_summary(ctl, w, true);
	if (w->answer)
		snprintf(when, sizeof(when), "in the %s phase", w->report.phase);
	bar_clear(w);
	fprintf(stderr,
		"skiff ctl: migrate: %s went away %s, before the final phase: whether the "
		"migration completed is unknown (see the destination)\n",
		ctl->socket_path, when);
	return -CTL_GONE;
}

static void migrate_sleep(void)
{
	struct timespec pause = { .tv_nsec = CTL_MIGRATE_POLL_MS * 1000000L };

	/* SIGINT cuts it short, and the cancel goes out at once. */
	nanosleep(&pause, NULL);
}

/* Follows a started migration until it ends, cancelling it on SIGINT. */
static int migrate_follow(struct ctl *ctl, struct migrate_watch *w)
{
	bool cancel_sent = false;
	json_t *answer;
	int ret;

	ctl->server_may_go = true;
	for (;;) {
		if (interrupted && !cancel_sent) {
			cancel_sent = true;
			bar_clear(w);
			ret = ctl_request(ctl, "DELETE", "/migrate", NULL, &answer);
			json_decref(answer);
			/* Refused: too late to cancel; what follows says how it ended. */
			if (ret && ret != -CTL_REFUSED && ret != -CTL_GONE)
				return ret;
		}
		ret = ctl_request(ctl, "GET", "/migrate", NULL, &answer);
		if (ret == -CTL_GONE)
			return migrate_gone(ctl, w);
		if (ret) {
			bar_clear(w);
			return ret;
		}
		ret = watch_take(w, answer);
		if (ret)
			return ret;
		watch_pass(w);
		if (phase_ended(&w->report))
			return migrate_summary(ctl, w, false);
		if (w->bar)
			bar_draw(w);
		migrate_sleep();
	}
}

static char *migrate_body(const struct ctl *ctl)
{
	json_t *body = json_pack("{s:s}", "destination", ctl->operand[0]);
	char *text = NULL;

	if (body && ctl->downtime_ms &&
	    json_object_set_new(body, "downtime_ms", json_integer(ctl->downtime_ms)))
		goto out;
	if (body && ctl->with_disks && json_object_set_new(body, "with_disks", json_true()))
		goto out;
	text = body ? json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
out:
	json_decref(body);
	return text;
}

/* PUT /migrate starts the migration, which runs on in the server; GET /migrate follows it. */
int cmd_migrate(struct ctl *ctl, const struct ctl_command *cmd)
{
	struct sigaction on_interrupt = { .sa_handler = note_interrupt }, saved;
	struct migrate_watch w = { .bar = isatty(STDERR_FILENO) };
	char *body = migrate_body(ctl);
	json_t *answer;
	int ret;

	(void)cmd;
	if (!body) {
		fprintf(stderr, "skiff ctl: migrate: %s\n", strerror(ENOMEM));
		return -ENOMEM;
	}
	w.phase_lines = !w.bar && !ctl->json;
	/*
	 * Before the PUT, so that a Ctrl-C during it still cancels. No SA_RESTART: the poll's
	 * sleep ends at once. SA_RESETHAND: a second Ctrl-C leaves without waiting. Where
	 * SIGINT is ignored (started in the background), it stays so.
	 */
	interrupted = 0;
	on_interrupt.sa_flags = SA_RESETHAND;
	sigemptyset(&on_interrupt.sa_mask);
	sigaction(SIGINT, NULL, &saved);
	if (saved.sa_handler != SIG_IGN)
		sigaction(SIGINT, &on_interrupt, NULL);
	ret = ctl_request(ctl, "PUT", "/migrate", body, &answer);
	json_decref(answer);
	free(body);
	if (!ret)
		ret = migrate_follow(ctl, &w);
	sigaction(SIGINT, &saved, NULL);
	json_decref(w.answer);
	return ret;
}
