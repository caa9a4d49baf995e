package pipeline

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// MaxSecretSize bounds a secret read from a file.
const MaxSecretSize = 1 << 20

// ErrGranted is returned by Read for a secret the pipeline only names:
// its value is the engine config's to grant.
var ErrGranted = errors.New("the secret is only named; the engine config grants its value")

// Read returns the secret's value from the environment (through lookupEnv)
// or from its file (trailing newlines dropped, at most MaxSecretSize bytes).
// The error says where the value was looked for, never what it is.
func (r SecretRef) Read(lookupEnv func(string) (string, bool)) (string, error) {
	switch {
	case r.Env != "":
		v, ok := lookupEnv(r.Env)
		if !ok {
			return "", fmt.Errorf("environment variable %s is not set", r.Env)
		}
		return v, nil
	case r.File != "":
		return readSecretFile(r.File)
	}
	return "", ErrGranted
}

func readSecretFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("reading secret file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxSecretSize+1))
	if err != nil {
		return "", fmt.Errorf("reading secret file %s: %w", path, err)
	}
	if len(b) > MaxSecretSize {
		return "", fmt.Errorf("secret file %s is larger than %d bytes", path, MaxSecretSize)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}
