/*
 * Runs a command and prints its peak RSS (KiB) on stderr as "spawn_rss: KIB". A child's
 * peak RSS includes the image it was forked from until exec, so benchmarks spawn through
 * this small program rather than from Python, whose image would dominate every number.
 */
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct rusage usage;
	int status;
	pid_t pid;

	if (argc < 2) {
		fprintf(stderr, "usage: spawn_rss COMMAND [ARG...]\n");
		return 2;
	}
	pid = fork();
	if (pid == 0) {
		execvp(argv[1], argv + 1);
		perror(argv[1]);
		_exit(127);
	}
	if (pid < 0 || wait4(pid, &status, 0, &usage) < 0) {
		perror("spawn_rss");
		return 2;
	}
	fprintf(stderr, "spawn_rss: %ld\n", usage.ru_maxrss);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
