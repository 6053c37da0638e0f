/* Writing through a null pointer kills the process with SIGSEGV (139). */
#include "conf.h"

int main(void)
{
	volatile int *volatile p = NULL;
	printf("writing through a null pointer\n");
	fflush(stdout);
	*p = 1;
	printf("survived the write (wrong)\n");
	return 0;
}
