/* Exits with atoi(argv[1]); the status seen by the parent is that & 0xff. */
#include "conf.h"

int main(int argc, char **argv)
{
	return argc > 1 ? atoi(argv[1]) : 0;
}
