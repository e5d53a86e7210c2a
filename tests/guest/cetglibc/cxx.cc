// C++ exceptions through many frames: libgcc's unwinder pops the shadow stack (INCSSP).
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>
#include "common.h"

__attribute__((noinline)) int descend(int n) {
    if (n == 0) throw std::runtime_error("bottom reached");
    std::string s = std::to_string(n);
    return descend(n - 1) + static_cast<int>(s.size());
}

int main() {
    uint64_t base = ss_get_ssp();
    int caught = 0;
    for (int i = 0; i < 30; i++) {
        try {
            descend(300 + i);
        } catch (const std::exception &e) {
            caught += std::string(e.what()) == "bottom reached";
        }
    }
    std::vector<int> v(1000);
    for (int i = 0; i < 1000; i++) v[i] = i;
    std::printf("caught %d, vector %d, ssp back %s, status %lu\n", caught, v[999],
                ss_get_ssp() == base ? "yes" : "no", cet_status());
    return 0;
}
