package pipeline

import (
	"fmt"
	"io"
	"os"

	"github.com/slipwayci/slipway/pipeline/strictyaml"
)

// MaxFileSize is the largest pipeline file accepted.
const MaxFileSize = 1 << 20

// Error and Errors are the problems Load and Parse report; see strictyaml.
type (
	Error  = strictyaml.Error
	Errors = strictyaml.Errors
)

// Load reads and validates a pipeline file. Problems in the file come back
// as Errors (all of them at once); a file that cannot be read is a plain error.
func Load(path string) (*Pipeline, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading pipeline: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading pipeline %s: %w", path, err)
	}
	return Parse(path, data)
}

// MaxReported is how many problems are listed before the rest are counted.
const MaxReported = 100

// limitErrors sorts the problems and cuts a flood short: a hostile or
// generated file must not produce megabytes of messages.
func limitErrors(errs Errors) Errors {
	errs.Sort()
	if len(errs) <= MaxReported {
		return errs
	}
	rest := len(errs) - MaxReported
	errs = append(errs[:MaxReported:MaxReported], &Error{File: errs[0].File, Msg: fmt.Sprintf("… and %d more problems", rest)})
	return errs
}

// Parse decodes and validates the text of a pipeline file named file that
// the engine's operator (or the person running `slipway run`) wrote.
func Parse(file string, data []byte) (*Pipeline, error) { return parseFile(file, data, false, nil) }

// ParseUntrusted is Parse for a file read from a repository, which anyone
// who can push a branch may have written: it may name secrets but never say
// where their values come from, and the result is marked Untrusted.
// Its demands on the engine are held to DefaultLimits.
func ParseUntrusted(file string, data []byte) (*Pipeline, error) {
	return parseFile(file, data, true, &DefaultLimits)
}

// ParseUntrustedWithin is ParseUntrusted within the limits the engine
// config sets for the repository it was read from.
func ParseUntrustedWithin(file string, data []byte, l Limits) (*Pipeline, error) {
	return parseFile(file, data, true, &l)
}

// ParseStored parses the pipeline stored with a run, as it was read
// (untrusted or not), except for its Limits: those may have changed since,
// and the runner's admission checks them as they are now.
func ParseStored(file string, data []byte, untrusted bool) (*Pipeline, error) {
	return parseFile(file, data, untrusted, nil)
}

func parseFile(file string, data []byte, untrusted bool, limits *Limits) (*Pipeline, error) {
	p := &Pipeline{Untrusted: untrusted}
	pos, errs := strictyaml.Decode(file, data, p, strictyaml.Limits{MaxBytes: MaxFileSize, MaxNodes: 100_000})
	if len(errs) > 0 && len(pos) == 0 {
		return nil, errs // the file as a whole is unreadable: nothing to check further
	}
	v := &validator{file: file, pos: pos, errs: errs, decodeErr: errs, untrusted: untrusted}
	v.pipeline(p)
	if untrusted && limits != nil {
		limits.Check(p, v.failf)
	}
	if len(v.errs) > 0 {
		return nil, limitErrors(v.errs)
	}
	p.File, p.pos = file, pos
	p.Source = append([]byte(nil), data...)
	return p, nil
}
