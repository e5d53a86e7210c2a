#include "common.h"
int main(int argc, char **argv) { return argc > 1 && !strcmp(argv[1], "child") ? 3 : 1; }
