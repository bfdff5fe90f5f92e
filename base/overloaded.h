#pragma once

namespace mesh {

// The overload set for std::visit over a variant:
//   std::visit(Overloaded{[](const A&) {...}, [](const B&) {...}}, v);
template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

}  // namespace mesh
