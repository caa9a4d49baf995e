package runner

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/slipwayci/slipway/pipeline"
)

// maxSecretSize bounds a secret read from a file.
const maxSecretSize = 1 << 20

// resolveSecrets reads every secret the pipeline declares. A missing
// secret fails the run before any stage starts, with a sentence that says
// where it was looked for (never what it is).
func resolveSecrets(refs map[string]pipeline.SecretRef, lookupEnv func(string) (string, bool)) (map[string]string, error) {
	out := make(map[string]string, len(refs))
	for name, ref := range refs {
		switch {
		case ref.Env != "":
			v, ok := lookupEnv(ref.Env)
			if !ok {
				return nil, fmt.Errorf("secret %s: environment variable %s is not set", name, ref.Env)
			}
			out[name] = v
		case ref.File != "":
			v, err := readSecretFile(ref.File)
			if err != nil {
				return nil, fmt.Errorf("secret %s: %w", name, err)
			}
			out[name] = v
		}
	}
	return out, nil
}

func readSecretFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("reading secret file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSecretSize+1))
	if err != nil {
		return "", fmt.Errorf("reading secret file %s: %w", path, err)
	}
	if len(b) > maxSecretSize {
		return "", fmt.Errorf("secret file %s is larger than %d bytes", path, maxSecretSize)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}
