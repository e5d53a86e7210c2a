/* A small shared object for the dlopen mutants. */
int hello_value = 42;
int hello(int x) { return x + hello_value; }
