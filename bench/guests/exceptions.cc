// C++ exception-heavy loop: every iteration throws through a few frames.
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
__attribute__((noinline)) int thrower(int n) {
    if (n == 0) throw std::runtime_error("x");
    return thrower(n - 1) + 1;
}
int main(int argc, char **argv) {
    int iters = argc > 1 ? std::atoi(argv[1]) : 2000, caught = 0;
    for (int i = 0; i < iters; i++) {
        try { thrower(8); } catch (const std::exception &) { caught++; }
    }
    std::printf("%d\n", caught);
    return 0;
}
