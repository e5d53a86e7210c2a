// C++: iostreams (formatting, stringstreams), exceptions thrown through many frames and
// caught by base class, rethrow, nested try, destructors during unwinding, std::map,
// std::string, std::vector, std::sort, std::unique_ptr, lambdas, std::function.
#include <algorithm>
#include <functional>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <numeric>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

static int destroyed = 0;

struct Guard {
    int id;
    explicit Guard(int i) : id(i) {}
    ~Guard() { destroyed++; }
};

struct DeepError : std::runtime_error {
    int depth;
    DeepError(const std::string &m, int d) : std::runtime_error(m), depth(d) {}
};

__attribute__((noinline)) static int thrower(int depth) {
    Guard g(depth);
    if (depth == 0)
        throw DeepError("bottom reached", 200);
    return thrower(depth - 1) + g.id;
}

static int rethrow_path() {
    try {
        thrower(10);
    } catch (std::exception &e) {
        std::cout << "inner caught: " << e.what() << ", rethrowing\n";
        throw;
    }
    return 0;
}

int main() {
    std::cout << "hello from iostream " << 42 << ' ' << 3.5 << ' ' << true << std::endl;
    std::cout << std::boolalpha << true << ' ' << std::hex << 255 << std::dec << ' '
              << std::setw(8) << std::setfill('*') << 42 << std::setfill(' ') << ' '
              << std::fixed << std::setprecision(3) << 3.14159 << ' ' << std::scientific
              << 12345.678 << std::defaultfloat << '\n';

    try {
        thrower(200);
    } catch (const std::runtime_error &e) {
        std::cout << "caught runtime_error: " << e.what()
                  << " depth=" << dynamic_cast<const DeepError &>(e).depth
                  << " destroyed=" << destroyed << '\n';
    }
    try {
        rethrow_path();
    } catch (const DeepError &e) {
        std::cout << "outer caught DeepError " << e.what() << '\n';
    }
    try {
        std::vector<int> v(3);
        v.at(10) = 1;
    } catch (const std::out_of_range &e) {
        std::cout << "out_of_range caught\n";
    }
    try {
        throw 17;
    } catch (int x) {
        std::cout << "caught int " << x << '\n';
    }
    try {
        try {
            throw std::string("inner string");
        } catch (const std::string &s) {
            throw std::logic_error("converted: " + s);
        }
    } catch (const std::logic_error &e) {
        std::cout << e.what() << '\n';
    }
    std::cout << "destroyed total=" << destroyed << '\n';

    std::map<std::string, int> counts;
    std::istringstream text("the quick brown fox jumps over the lazy dog the end fox");
    std::string w;
    while (text >> w)
        counts[w]++;
    for (const auto &kv : counts)
        std::cout << kv.first << '=' << kv.second << ' ';
    std::cout << '\n';

    std::vector<int> v;
    for (int i = 0; i < 100000; i++)
        v.push_back((i * 7919) % 100003);
    std::sort(v.begin(), v.end());
    std::cout << "sorted: " << v.front() << ' ' << v[50000] << ' ' << v.back()
              << " sum=" << std::accumulate(v.begin(), v.end(), 0LL) << '\n';
    std::vector<std::string> names{"delta", "alpha", "charlie", "bravo"};
    std::sort(names.begin(), names.end(),
              [](const std::string &a, const std::string &b) { return a.size() < b.size() ||
                  (a.size() == b.size() && a < b); });
    for (auto &n : names)
        std::cout << n << ' ';
    std::cout << '\n';

    std::string s = "Hello";
    s += ", C++ world";
    s.replace(0, 5, "Goodbye");
    std::cout << s << " len=" << s.size() << " find=" << s.find("world")
              << " substr=" << s.substr(9, 3) << '\n';

    auto up = std::make_unique<std::vector<double>>(5, 1.25);
    std::function<double(double)> f = [&up](double x) { return x * (*up)[0]; };
    std::cout << "function: " << f(4.0) << '\n';
    std::ostringstream os;
    os << std::setprecision(10) << 1.0 / 3;
    std::cout << "ostringstream: " << os.str() << '\n';
    std::cerr << "to cerr\n";
    return 0;
}
