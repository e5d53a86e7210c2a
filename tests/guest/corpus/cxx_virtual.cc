// C++ virtual dispatch: abstract base, overrides, virtual destructors, multiple and virtual
// inheritance, dynamic_cast, typeid names, calls through base pointers in a loop.
#include <cstdio>
#include <memory>
#include <typeinfo>
#include <vector>

struct Shape {
    virtual ~Shape() { std::printf("~Shape\n"); }
    virtual double area() const = 0;
    virtual const char *name() const { return "shape"; }
};
struct Rect : Shape {
    double w, h;
    Rect(double a, double b) : w(a), h(b) {}
    ~Rect() override { std::printf("~Rect\n"); }
    double area() const override { return w * h; }
    const char *name() const override { return "rect"; }
};
struct Square final : Rect {
    explicit Square(double s) : Rect(s, s) {}
    ~Square() override { std::printf("~Square\n"); }
    const char *name() const override { return "square"; }
};
struct Circle : Shape {
    double r;
    explicit Circle(double x) : r(x) {}
    double area() const override { return 3.14159 * r * r; }
};

struct Base { virtual int id() const { return 1; } virtual ~Base() = default; int b = 10; };
struct Left : virtual Base { int id() const override { return 2; } int l = 20; };
struct Right : virtual Base { int r = 30; virtual int rid() const { return 3; } };
struct Diamond : Left, Right { int id() const override { return 4; } int rid() const override { return 5; } };

int main() {
    std::vector<std::unique_ptr<Shape>> shapes;
    shapes.push_back(std::make_unique<Rect>(2, 3));
    shapes.push_back(std::make_unique<Square>(4));
    shapes.push_back(std::make_unique<Circle>(1));
    double total = 0;
    for (int round = 0; round < 1000; round++)
        for (auto &s : shapes)
            total += s->area();
    for (auto &s : shapes)
        std::printf("%s area=%.5f rect?%d typeid=%s\n", s->name(), s->area(),
                    dynamic_cast<Rect *>(s.get()) != nullptr, typeid(*s).name());
    std::printf("total=%.3f\n", total);
    Diamond d;
    Base *b = &d;
    Right *r = &d;
    std::printf("diamond: id=%d rid=%d b=%d l=%d r=%d cross-cast=%d\n", b->id(), r->rid(), b->b,
                d.l, r->r, dynamic_cast<Left *>(r) == static_cast<Left *>(&d));
    shapes.clear();
    std::printf("done\n");
    return 0;
}
