#include "serial.h"

#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* Register offsets and bits, as in the PC16550D data sheet. */
enum {
	REG_DATA = 0, /* RBR / THR, or DLL when LCR.DLAB */
	REG_IER = 1,  /* or DLM when LCR.DLAB */
	REG_IIR = 2,  /* FCR on write */
	REG_LCR = 3,
	REG_MCR = 4,
	REG_LSR = 5,
	REG_MSR = 6,
	REG_SCR = 7,
};

#define IER_RDA		0x01
#define IER_THRE	0x02
#define IIR_NONE	0x01
#define IIR_THRE	0x02
#define IIR_RDA		0x04
#define IIR_FIFO	0xc0
#define FCR_ENABLE	0x01
#define FCR_CLEAR_RX	0x02
#define LCR_DLAB	0x80
#define MCR_DTR		0x01
#define MCR_RTS		0x02
#define MCR_OUT1	0x04
#define MCR_OUT2	0x08
#define MCR_LOOP	0x10
#define LSR_DR		0x01
#define LSR_THRE	0x20
#define LSR_TEMT	0x40
#define MSR_CTS		0x10
#define MSR_DSR		0x20
#define MSR_RI		0x40
#define MSR_DCD		0x80

int serial_init(struct serial *s, int out_fd, struct irq_line irq)
{
	memset(s, 0, sizeof(*s));
	s->space_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->space_fd < 0)
		return -errno;
	pthread_mutex_init(&s->lock, NULL);
	s->out_fd = out_fd;
	s->irq = irq;
	s->lsr = LSR_THRE | LSR_TEMT;
	s->msr = MSR_DCD | MSR_DSR | MSR_CTS;
	s->mcr = MCR_OUT2;
	return 0;
}

void serial_destroy(struct serial *s)
{
	close(s->space_fd);
	pthread_mutex_destroy(&s->lock);
}

static uint8_t serial_iir(const struct serial *s)
{
	uint8_t fifo = (s->fcr & FCR_ENABLE) ? IIR_FIFO : 0;

	if ((s->ier & IER_RDA) && s->rx_count)
		return IIR_RDA | fifo;
	if ((s->ier & IER_THRE) && s->thr_interrupt)
		return IIR_THRE | fifo;
	return IIR_NONE | fifo;
}

/* The line follows the interrupt condition; the IOAPIC turns its rising edges into vectors. */
static void serial_update_irq(struct serial *s)
{
	bool level = !(serial_iir(s) & IIR_NONE);

	if (level != s->irq_level) {
		s->irq_level = level;
		irq_line_set(&s->irq, level);
	}
}

static void rx_push(struct serial *s, uint8_t byte)
{
	if (s->rx_count == SERIAL_RX_SIZE)
		return; /* overrun: real hardware drops the byte too */
	s->rx[(s->rx_head + s->rx_count) % SERIAL_RX_SIZE] = byte;
	s->rx_count++;
	s->lsr |= LSR_DR;
}

static uint8_t rx_pop(struct serial *s)
{
	uint8_t byte;

	if (!s->rx_count)
		return 0;
	byte = s->rx[s->rx_head];
	s->rx_head = (s->rx_head + 1) % SERIAL_RX_SIZE;
	s->rx_count--;
	if (!s->rx_count) {
		s->lsr &= ~LSR_DR;
		if (s->rx_was_full) {
			s->rx_was_full = false;
			eventfd_write(s->space_fd, 1);
		}
	}
	return byte;
}

static void transmit(struct serial *s, uint8_t byte)
{
	if (s->mcr & MCR_LOOP) {
		rx_push(s, byte);
	} else {
		/* The terminal going away must not stop the guest. */
		while (write(s->out_fd, &byte, 1) < 0 && errno == EINTR)
			;
	}
	/* Transmission is instant, so THR is empty again at once. */
	s->thr_interrupt = true;
}

static uint8_t modem_status(const struct serial *s)
{
	/* Loopback wires the modem outputs to the inputs; Linux's UART probe checks this. */
	if (s->mcr & MCR_LOOP)
		return ((s->mcr & MCR_RTS) ? MSR_CTS : 0) | ((s->mcr & MCR_DTR) ? MSR_DSR : 0) |
		       ((s->mcr & MCR_OUT1) ? MSR_RI : 0) | ((s->mcr & MCR_OUT2) ? MSR_DCD : 0);
	return s->msr;
}

static void serial_write(struct serial *s, unsigned reg, uint8_t v)
{
	bool dlab = s->lcr & LCR_DLAB;

	switch (reg) {
	case REG_DATA:
		if (dlab)
			s->dll = v;
		else
			transmit(s, v);
		break;
	case REG_IER:
		if (dlab) {
			s->dlm = v;
		} else {
			/* Enabling THRE with THR empty raises the interrupt at once. */
			if ((v & IER_THRE) && !(s->ier & IER_THRE))
				s->thr_interrupt = true;
			s->ier = v & 0x0f;
		}
		break;
	case REG_IIR:
		s->fcr = v & (FCR_ENABLE | 0xc0);
		if (v & FCR_CLEAR_RX) {
			s->rx_count = 0;
			s->lsr &= ~LSR_DR;
		}
		break;
	case REG_LCR:
		s->lcr = v;
		break;
	case REG_MCR:
		s->mcr = v & 0x1f;
		break;
	case REG_SCR:
		s->scr = v;
		break;
	default: /* LSR and MSR are read-only */
		break;
	}
}

static uint8_t serial_read(struct serial *s, unsigned reg)
{
	bool dlab = s->lcr & LCR_DLAB;
	uint8_t v;

	switch (reg) {
	case REG_DATA:
		return dlab ? s->dll : rx_pop(s);
	case REG_IER:
		return dlab ? s->dlm : s->ier;
	case REG_IIR:
		v = serial_iir(s);
		if ((v & 0x0f) == IIR_THRE)
			s->thr_interrupt = false;
		return v;
	case REG_LCR:
		return s->lcr;
	case REG_MCR:
		return s->mcr;
	case REG_LSR:
		return s->lsr;
	case REG_MSR:
		return modem_status(s);
	default:
		return s->scr;
	}
}

void serial_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct serial *s = opaque;

	/* Registers are bytes; a wider access touches only the first. */
	pthread_mutex_lock(&s->lock);
	if (is_write) {
		serial_write(s, offset, data[0]);
	} else {
		memset(data, 0, len);
		data[0] = serial_read(s, offset);
	}
	serial_update_irq(s);
	pthread_mutex_unlock(&s->lock);
}

size_t serial_receive(void *serial, const uint8_t *buf, size_t len)
{
	struct serial *s = serial;
	size_t n;

	pthread_mutex_lock(&s->lock);
	for (n = 0; n < len && s->rx_count < SERIAL_RX_SIZE; n++)
		rx_push(s, buf[n]);
	if (n < len)
		s->rx_was_full = true;
	serial_update_irq(s);
	pthread_mutex_unlock(&s->lock);
	return n;
}

void serial_save(struct serial *s, struct state_writer *w)
{
	pthread_mutex_lock(&s->lock);
	state_begin(w, "UART", 1);
	state_put_bytes(w, (uint8_t[]){ s->ier, s->lcr, s->mcr, s->lsr, s->msr, s->scr, s->dll,
					 s->dlm, s->fcr, s->thr_interrupt, s->irq_level,
					 s->rx_was_full },
			12);
	state_put_u16(w, s->rx_count);
	for (unsigned i = 0; i < s->rx_count; i++)
		state_put_u8(w, s->rx[(s->rx_head + i) % SERIAL_RX_SIZE]);
	state_end(w);
	pthread_mutex_unlock(&s->lock);
}

int serial_load(struct serial *s, struct state_reader *r)
{
	uint8_t regs[12], rx[SERIAL_RX_SIZE];
	unsigned count;

	if (state_open(r, "UART") != 1)
		return -EINVAL;
	state_get_bytes(r, regs, sizeof(regs));
	count = state_get_u16(r);
	if (count > SERIAL_RX_SIZE || regs[9] > 1 || regs[10] > 1 || regs[11] > 1)
		return -EINVAL;
	state_get_bytes(r, rx, count);
	if (state_close(r))
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	s->ier = regs[0];
	s->lcr = regs[1];
	s->mcr = regs[2];
	s->lsr = regs[3];
	s->msr = regs[4];
	s->scr = regs[5];
	s->dll = regs[6];
	s->dlm = regs[7];
	s->fcr = regs[8];
	s->thr_interrupt = regs[9];
	s->irq_level = regs[10];
	s->rx_was_full = regs[11];
	memcpy(s->rx, rx, count);
	s->rx_head = 0;
	s->rx_count = count;
	pthread_mutex_unlock(&s->lock);
	return 0;
}
