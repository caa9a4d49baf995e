// Package strictyaml decodes one YAML document into Go structs strictly and
// reports every problem at once, each with its line, column and field path.
//
// It exists because gopkg.in/yaml.v3 stops at the first type error, reports
// unknown fields without columns or paths, and expands aliases without a
// bound. Here:
//
//   - unknown fields, duplicate keys and wrong types are problems, with a
//     "did you mean" hint for near-misses;
//   - a scalar where text is expected must really be text (`version: 1.10`
//     is a number and is refused with a hint to quote it);
//   - aliases are followed but every node visited, through aliases too,
//     counts against a budget, so an alias bomb is refused, not expanded;
//   - the positions of all decoded values are kept by field path, so later
//     semantic checks can point at the right line.
//
// Types control their own decoding with [Unmarshaler] or
// encoding.TextUnmarshaler (for scalars such as durations).
package strictyaml
