// A dynamic C++ program: libstdc++ containers, strings, iostreams, virtual calls and
// exceptions thrown through several frames with destructors on the way (unwound by
// libgcc_s, whose unwinder pops the shadow stack with INCSSP when shadow stacks are on).
#include <algorithm>
#include <iostream>
#include <map>
#include <memory>
#include <numeric>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

std::vector<std::string> trail;

struct Guard {
    std::string name;
    explicit Guard(std::string n) : name(std::move(n)) {}
    ~Guard() { trail.push_back(name); }
};

struct Shape {
    virtual ~Shape() = default;
    virtual double area() const = 0;
    virtual std::string name() const = 0;
};
struct Rect : Shape {
    double w, h;
    Rect(double w_, double h_) : w(w_), h(h_) {}
    double area() const override { return w * h; }
    std::string name() const override { return "rect"; }
};
struct Square : Rect {
    explicit Square(double s) : Rect(s, s) {}
    std::string name() const override { return "square"; }
};

struct BadInput : std::runtime_error {
    int code;
    BadInput(const std::string &what, int c) : std::runtime_error(what), code(c) {}
};

__attribute__((noinline)) int parse(const std::string &s, int depth)
{
    Guard g("parse" + std::to_string(depth));
    if (depth > 0)
        return parse(s, depth - 1) + 1;
    size_t used = 0;
    int v = std::stoi(s, &used);
    if (used != s.size())
        throw BadInput("trailing characters in '" + s + "'", static_cast<int>(used));
    return v;
}

}  // namespace

int main()
{
    std::vector<std::unique_ptr<Shape>> shapes;
    shapes.push_back(std::make_unique<Rect>(2, 3));
    shapes.push_back(std::make_unique<Square>(4));
    shapes.push_back(std::make_unique<Rect>(1.5, 2));
    std::sort(shapes.begin(), shapes.end(),
              [](const auto &a, const auto &b) { return a->area() < b->area(); });
    for (const auto &s : shapes)
        std::cout << s->name() << " " << s->area() << "\n";

    std::map<std::string, int> counts;
    std::istringstream words("the cat and the dog and the bird");
    for (std::string w; words >> w;)
        counts[w]++;
    for (const auto &[w, c] : counts)
        std::cout << w << "=" << c << " ";
    std::cout << "\n";

    std::vector<int> v(100);
    std::iota(v.begin(), v.end(), 1);
    std::cout << "sum " << std::accumulate(v.begin(), v.end(), 0L) << "\n";

    for (const char *input : {"42", "17x", "abc"}) {
        trail.clear();
        try {
            int value = parse(input, 3);
            std::cout << input << " -> " << value << "\n";
        } catch (const BadInput &e) {
            std::cout << input << " -> BadInput(" << e.code << "): " << e.what() << "\n";
        } catch (const std::invalid_argument &e) {
            std::cout << input << " -> invalid_argument: " << e.what() << "\n";
        }
        std::cout << "  unwound:";
        for (const auto &t : trail)
            std::cout << " " << t;
        std::cout << "\n";
    }

    try {
        try {
            throw std::out_of_range("inner");
        } catch (const std::exception &e) {
            std::cout << "caught " << e.what() << ", rethrowing\n";
            throw;
        }
    } catch (const std::out_of_range &e) {
        std::cout << "caught again: " << e.what() << "\n";
    }
    try {
        std::vector<int> small(3);
        (void)small.at(10);
    } catch (const std::out_of_range &) {
        std::cout << "vector::at threw out_of_range\n";
    }
    return 0;
}
