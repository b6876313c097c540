#include "tests/util.h"

int main(void)
{
    return run_suite(suite_create("vit"));
}
