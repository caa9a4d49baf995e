// Package toollog rewrites the log lines of the tools stages run — Kaniko
// (logrus: time="…" level=info msg="…") and Trivy (zap: TIME\tLEVEL\tmsg)
// — into lines that read like the rest of a run's log: the tool's name,
// the level only when it is not info (WARNING and ERROR stay prominent),
// the message, and no second timestamp (the run log has its own). Lines
// that are not log lines (a build step's own output) pass unchanged.
package toollog

import (
	"bytes"
	"io"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// Line is one parsed log line.
type Line struct {
	Level string // debug, info, warning, error, fatal
	Msg   string // with any fields after it, as the tool wrote them
}

var (
	logrusLine = regexp.MustCompile(`^time="[^"]*" level=([a-z]+) msg=(?:"((?:[^"\\]|\\.)*)"|([^\s"]+))(.*)$`)
	zapLine    = regexp.MustCompile(`^\d{4}-\d\d-\d\dT[0-9:.]+(?:Z|[+-]\d\d:?\d\d)\t([A-Z]+)\t(.*)$`)
)

// Parse reads a logrus or zap console line; ok is false for other text.
func Parse(line string) (l Line, ok bool) {
	if m := logrusLine.FindStringSubmatch(line); m != nil {
		msg := m[3] // logrus quotes a message only when it needs to
		if m[3] == "" {
			var err error
			if msg, err = strconv.Unquote(`"` + m[2] + `"`); err != nil {
				msg = m[2]
			}
		}
		return Line{Level: level(m[1]), Msg: msg + m[4]}, true
	}
	if m := zapLine.FindStringSubmatch(line); m != nil {
		// zap separates the message and its fields with tabs.
		return Line{Level: level(m[1]), Msg: strings.ReplaceAll(m[2], "\t", ": ")}, true
	}
	return Line{}, false
}

func level(s string) string {
	switch s = strings.ToLower(s); s {
	case "warn":
		return "warning"
	case "panic", "dpanic":
		return "fatal"
	}
	return s
}

// Format is l as the run log shows it: "kaniko: msg" for info and debug,
// "kaniko: WARNING: msg" and "kaniko: ERROR: msg" for the rest.
func (l Line) Format(tool string) string {
	switch l.Level {
	case "info", "debug", "trace":
		return tool + ": " + l.Msg
	}
	return tool + ": " + strings.ToUpper(l.Level) + ": " + l.Msg
}

// Rewrite is one line rewritten, or the line itself when it is not a log
// line.
func Rewrite(tool, line string) string {
	if l, ok := Parse(line); ok {
		return l.Format(tool)
	}
	return line
}

// maxLine bounds the partial line a Writer holds; a longer one is passed
// on as it is.
const maxLine = 64 << 10

// Writer rewrites the complete lines written to it onto w. Close passes on
// a last line without a newline. It is safe for concurrent use (a tool's
// stdout and stderr may share one).
type Writer struct {
	mu   sync.Mutex
	w    io.Writer
	tool string
	buf  []byte
}

// NewWriter returns a Writer that rewrites tool's lines onto w.
func NewWriter(w io.Writer, tool string) *Writer { return &Writer{w: w, tool: tool} }

func (t *Writer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	for {
		i := bytes.IndexByte(t.buf, '\n')
		if i < 0 {
			break
		}
		if err := t.emit(string(t.buf[:i])); err != nil {
			return len(p), err
		}
		t.buf = t.buf[i+1:]
	}
	if len(t.buf) > maxLine {
		err := t.emit(string(t.buf))
		t.buf = t.buf[:0]
		return len(p), err
	}
	return len(p), nil
}

// Close passes on what is left of an unfinished line.
func (t *Writer) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.buf) == 0 {
		return nil
	}
	err := t.emit(string(t.buf))
	t.buf = nil
	return err
}

func (t *Writer) emit(line string) error {
	_, err := io.WriteString(t.w, Rewrite(t.tool, strings.TrimSuffix(line, "\r"))+"\n")
	return err
}
