// Package pipeline is the pipeline file: its model, strict decoding,
// validation, trigger filters and templating.
//
// Load and Parse return a *Pipeline only when the file is entirely valid;
// otherwise they return Errors, every problem at once, each printed as
// "FILE:LINE:COL: field.path: message". The stage kinds' settings
// (CloneSpec, BuildSpec, …) are part of the file's schema and are defined
// here; what each kind does with them lives in stages/<kind>.
//
// String settings of stages are Go templates over Data, rendered just
// before a stage runs (RenderSpec), so a later stage can read an earlier
// one's outputs: "{{ .Stages.build.digest }}". Validation checks that a
// template names only known fields and only stages that run earlier.
package pipeline
