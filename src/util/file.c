#include "file.h"

#include "../log.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int file_map(const char *path, struct mapped_file *f)
{
	struct stat st;
	int fd, err = 0;

	f->data = NULL;
	f->size = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		log_error("%s: %s", path, strerror(errno));
		return err;
	}
	if (fstat(fd, &st) < 0) {
		err = -errno;
		log_error("%s: %s", path, strerror(errno));
	} else if (!S_ISREG(st.st_mode)) {
		err = -EINVAL;
		log_error("%s: not a regular file", path);
	} else if (st.st_size > 0) {
		void *p = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);

		if (p == MAP_FAILED) {
			err = -errno;
			log_error("%s: %s", path, strerror(errno));
		} else {
			f->data = p;
			f->size = st.st_size;
		}
	}
	close(fd);
	return err;
}

void file_unmap(struct mapped_file *f)
{
	if (f->data)
		munmap((void *)f->data, f->size);
	f->data = NULL;
	f->size = 0;
}
