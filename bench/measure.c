/*
 * Runs a command and reports on stderr, as "measure: first_us=F exit_us=E rss_kib=R", the
 * microseconds from just before fork() to the command's first byte on stdout and to its
 * exit, and its peak RSS. Timing here rather than in a script keeps the script's own
 * process start-up out of the numbers, and a child's peak RSS includes the image it was
 * forked from until exec, so that image is this small program, not a Python interpreter.
 * With --first the command is killed at its first byte: for guests that do not exit.
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int64_t now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000LL + t.tv_nsec / 1000;
}

int main(int argc, char **argv)
{
	int64_t start, first = -1;
	struct rusage usage;
	char buf[65536];
	int status, out[2], first_only = argc > 1 && !strcmp(argv[1], "--first");
	ssize_t n;
	pid_t pid;

	argv += first_only;
	argc -= first_only;
	if (argc < 2 || pipe(out) < 0) {
		fprintf(stderr, "usage: measure [--first] COMMAND [ARG...]\n");
		return 2;
	}
	start = now_us();
	pid = fork();
	if (pid == 0) {
		dup2(out[1], STDOUT_FILENO);
		close(out[0]);
		close(out[1]);
		execvp(argv[1], argv + 1);
		perror(argv[1]);
		_exit(127);
	}
	close(out[1]);
	while ((n = read(out[0], buf, sizeof(buf))) > 0) {
		if (first < 0)
			first = now_us() - start;
		if (write(STDOUT_FILENO, buf, n) != n || first_only) {
			kill(pid, SIGKILL);
			break;
		}
	}
	if (pid < 0 || wait4(pid, &status, 0, &usage) < 0) {
		perror("measure");
		return 2;
	}
	fprintf(stderr, "measure: first_us=%lld exit_us=%lld rss_kib=%ld\n", (long long)first,
		(long long)(now_us() - start), usage.ru_maxrss);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
