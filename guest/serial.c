/* COM1, an 8250-compatible UART, used as the firmware left it: no baud or format setup needed. */
#include "probe.h"

#define COM1		0x3f8
#define UART_DATA	0	/* RBR on read, THR on write */
#define UART_IER	1
#define UART_MCR	4
#define UART_LSR	5

#define IER_RX_AVAILABLE	0x01
#define MCR_DTR_RTS		0x03
#define MCR_OUT2		0x08	/* gates the UART's IRQ line on PCs */
#define LSR_DATA_READY		0x01
#define LSR_THR_EMPTY		0x20

void serial_putc(char c)
{
	while (!(inb(COM1 + UART_LSR) & LSR_THR_EMPTY))
		cpu_relax();
	outb(COM1 + UART_DATA, (uint8_t)c);
}

bool serial_rx_ready(void)
{
	return inb(COM1 + UART_LSR) & LSR_DATA_READY;
}

char serial_getc(void)
{
	return (char)inb(COM1 + UART_DATA);
}

void serial_enable_rx_irq(void)
{
	outb(COM1 + UART_MCR, MCR_DTR_RTS | MCR_OUT2);
	outb(COM1 + UART_IER, IER_RX_AVAILABLE);
}
