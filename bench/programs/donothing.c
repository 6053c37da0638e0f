/* The smallest program: measures start-to-exit cost. */
int main(void) { return 0; }
