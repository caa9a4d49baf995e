package triggers

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
)

// spoolMemory is how much of a body is held in memory before the rest
// goes to a temporary file: a stranger's request costs at most this much
// memory, however large its body.
const spoolMemory = 256 << 10

// spool holds a request body as it streams: in memory up to spoolMemory,
// then in a temporary file. Close removes the file.
type spool struct {
	mem  bytes.Buffer
	file *os.File
	dir  string
	n    int64
}

func (s *spool) Write(p []byte) (int, error) {
	s.n += int64(len(p))
	if s.file == nil && s.mem.Len()+len(p) <= spoolMemory {
		return s.mem.Write(p)
	}
	if s.file == nil {
		f, err := os.CreateTemp(s.dir, "slipway-webhook-*")
		if err != nil {
			return 0, fmt.Errorf("spooling a webhook body: %w", err)
		}
		s.file = f
		if _, err := f.Write(s.mem.Bytes()); err != nil {
			return 0, err
		}
		s.mem = bytes.Buffer{}
	}
	return s.file.Write(p)
}

// Bytes returns the whole body (read back from the file when it spilled).
func (s *spool) Bytes() ([]byte, error) {
	if s.file == nil {
		return s.mem.Bytes(), nil
	}
	if _, err := s.file.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	return io.ReadAll(s.file)
}

// Close removes the temporary file, if any.
func (s *spool) Close() error {
	if s.file == nil {
		return nil
	}
	name := s.file.Name()
	return errors.Join(s.file.Close(), os.Remove(name))
}

// signers computes the HMAC-SHA256 of a body under several secrets in
// one pass, as it streams.
type signers struct {
	repos []*Repo
	macs  []hash.Hash
}

func newSigners(repos []*Repo) *signers {
	s := &signers{repos: repos}
	for _, r := range repos {
		s.macs = append(s.macs, hmac.New(sha256.New, []byte(r.Secret)))
	}
	return s
}

func (s *signers) Write(p []byte) (int, error) {
	for _, m := range s.macs {
		m.Write(p)
	}
	return len(p), nil
}

// matching returns the repositories whose secret signs the body with sig.
func (s *signers) matching(sig string) []*Repo {
	var out []*Repo
	for i, m := range s.macs {
		if s.repos[i].Secret != "" && equalConstantTime(sig, hex.EncodeToString(m.Sum(nil))) {
			out = append(out, s.repos[i])
		}
	}
	return out
}
