/* The main() of every suite that needs nothing before its tests. */
#include "tests/util.h"

int main(void) { return run_tests(false); }
