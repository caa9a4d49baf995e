package registry

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"slices"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// File is one file of an image layer.
type File struct {
	Path string
	Mode int64
	Data []byte
	Link string // a symlink target, instead of Data
}

// PushImage pushes a single-layer linux/amd64 image made of files to ref
// (a plain-HTTP loopback registry) and returns its digest.
func PushImage(ref string, files []File, cmd []string) (v1.Hash, error) {
	return PushImageConfig(ref, files, v1.Config{Cmd: cmd})
}

// PushImageConfig is PushImage with the image's config (entrypoint,
// command, environment; PATH is added when the environment has none).
func PushImageConfig(ref string, files []File, config v1.Config) (v1.Hash, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.Path, Mode: f.Mode, Size: int64(len(f.Data)), Typeflag: tar.TypeReg}
		if f.Link != "" {
			h = &tar.Header{Name: f.Path, Mode: 0o777, Typeflag: tar.TypeSymlink, Linkname: f.Link}
		} else if f.Mode&0o40000 != 0 || f.Path[len(f.Path)-1] == '/' {
			h = &tar.Header{Name: f.Path, Mode: f.Mode & 0o7777, Typeflag: tar.TypeDir}
			if h.Mode == 0 {
				h.Mode = 0o755
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			return v1.Hash{}, err
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(f.Data); err != nil {
				return v1.Hash{}, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return v1.Hash{}, err
	}
	layer, err := layerOf(buf.Bytes())
	if err != nil {
		return v1.Hash{}, err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return v1.Hash{}, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return v1.Hash{}, err
	}
	cfg = cfg.DeepCopy()
	cfg.Architecture, cfg.OS = "amd64", "linux"
	cfg.Config = config
	if len(cfg.Config.Env) == 0 {
		cfg.Config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	}
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		return v1.Hash{}, err
	}
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return v1.Hash{}, err
	}
	if err := remote.Write(r, img); err != nil {
		return v1.Hash{}, fmt.Errorf("pushing %s: %w", ref, err)
	}
	return img.Digest()
}

// layers are the layers this process made, by their tar's SHA-256: the
// tests push the same large images (the slipway helper, Kaniko, Trivy) to
// each test's registry, and compressing a layer was most of a push — 10
// to 25 s for one of 40 to 80 MB in a test binary built with the race
// detector, which instruments compress/flate.
var layers struct {
	sync.Mutex
	bySum map[[sha256.Size]byte]v1.Layer
}

// layerOf is the layer of a tar, compressed once per process (gzip's
// fastest level: the registry is on loopback) and then served from memory.
func layerOf(layerTar []byte) (v1.Layer, error) {
	sum := sha256.Sum256(layerTar)
	layers.Lock()
	defer layers.Unlock()
	if l, ok := layers.bySum[sum]; ok {
		return l, nil
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithCompressionLevel(gzip.BestSpeed), tarball.WithCompressedCaching)
	if err != nil {
		return nil, fmt.Errorf("making an image layer: %w", err)
	}
	if layers.bySum == nil {
		layers.bySum = map[[sha256.Size]byte]v1.Layer{}
	}
	layers.bySum[sum] = l
	return l, nil
}

// PushBusybox pushes a base image holding Debian's static busybox as
// /bin/busybox with /bin/sh and the common applets linked to it, so
// Dockerfiles built FROM it can RUN shell commands.
func PushBusybox(ref string) (v1.Hash, error) {
	files, err := busyboxFiles()
	if err != nil {
		return v1.Hash{}, err
	}
	return PushImage(ref, files, []string{"/bin/sh"})
}

// PushPause pushes the image of a Pod's sandbox container, which only
// holds the Pod's namespaces: busybox's shell as PID 1 waits (reaping
// whatever it is given) and exits at once on TERM or INT. (The local
// cluster has no registry.k8s.io to pull the usual pause image from.)
func PushPause(ref string) (v1.Hash, error) {
	files, err := busyboxFiles()
	if err != nil {
		return v1.Hash{}, err
	}
	return PushImage(ref, files, []string{"/bin/sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done"})
}

func busyboxFiles() ([]File, error) {
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		return nil, fmt.Errorf("reading /bin/busybox (Debian busybox-static): %w", err)
	}
	files := []File{{Path: "bin/", Mode: 0o40755}, {Path: "bin/busybox", Mode: 0o755, Data: bb}, {Path: "tmp/", Mode: 0o40777}, {Path: "etc/", Mode: 0o40755},
		{Path: "etc/passwd", Mode: 0o644, Data: []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")}}
	for _, applet := range []string{"sh", "echo", "cat", "ls", "mkdir", "cp", "rm", "chmod", "sleep", "true", "env", "wget", "grep", "sed", "nc"} {
		files = append(files, File{Path: "bin/" + applet, Link: "busybox"})
	}
	return files, nil
}

// PushKaniko pushes the Kaniko executor image the kubernetes executor
// runs, made from the pinned static executor as the official image is:
// /kaniko/executor as entrypoint, the machine's CA certificates.
func PushKaniko(ref, executor string) (v1.Hash, error) {
	files, err := filesFrom(map[string]string{"/kaniko/executor": executor, "/kaniko/ssl/certs/ca-certificates.crt": caCerts})
	if err != nil {
		return v1.Hash{}, err
	}
	return PushImageConfig(ref, files, v1.Config{Entrypoint: []string{"/kaniko/executor"}, Env: []string{
		"PATH=/usr/local/bin:/kaniko", "HOME=/root", "USER=root", "SSL_CERT_DIR=/kaniko/ssl/certs", "DOCKER_CONFIG=/kaniko/.docker/"}})
}

// PushSlipway pushes an image of a static slipway binary (the helper
// image whose `slipway checkout` fetches a commit into a stage's Pod).
func PushSlipway(ref, binary string) (v1.Hash, error) {
	files, err := filesFrom(map[string]string{"/usr/local/bin/slipway": binary, "/etc/ssl/certs/ca-certificates.crt": caCerts})
	if err != nil {
		return v1.Hash{}, err
	}
	return PushImageConfig(ref, files, v1.Config{Entrypoint: []string{"/usr/local/bin/slipway"}})
}

// PushTrivy pushes an image of the static Trivy CLI, shaped like the
// official one: trivy as entrypoint (`server …` as arguments), the
// machine's CA certificates.
func PushTrivy(ref, trivy string) (v1.Hash, error) {
	files, err := filesFrom(map[string]string{"/usr/local/bin/trivy": trivy, "/etc/ssl/certs/ca-certificates.crt": caCerts})
	if err != nil {
		return v1.Hash{}, err
	}
	return PushImageConfig(ref, files, v1.Config{Entrypoint: []string{"/usr/local/bin/trivy"}, Env: []string{"PATH=/usr/local/bin:/bin", "HOME=/tmp"}})
}

// PushStaticBase pushes a minimal non-root base image shaped like
// distroless/static: CA certificates, root and nonroot (65532) users, a
// world-writable /tmp — what the Dockerfile's image stands on offline.
func PushStaticBase(ref string) (v1.Hash, error) {
	files, err := filesFrom(map[string]string{"/etc/ssl/certs/ca-certificates.crt": caCerts})
	if err != nil {
		return v1.Hash{}, err
	}
	files = append(files,
		File{Path: "etc/passwd", Mode: 0o644, Data: []byte("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")},
		File{Path: "etc/group", Mode: 0o644, Data: []byte("root:x:0:\nnonroot:x:65532:\n")},
		File{Path: "tmp/", Mode: 0o41777})
	return PushImageConfig(ref, files, v1.Config{User: "65532:65532", Env: []string{"PATH=/usr/local/bin:/usr/bin:/bin", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"}})
}

const caCerts = "/etc/ssl/certs/ca-certificates.crt"

// filesFrom reads this machine's files into an image's (path inside ←
// path here), with their directories; executables stay executable.
func filesFrom(paths map[string]string) ([]File, error) {
	var files []File
	dirs := map[string]bool{}
	for _, in := range slices.Sorted(maps.Keys(paths)) {
		data, err := os.ReadFile(paths[in])
		if err != nil {
			return nil, fmt.Errorf("image file %s: %w", in, err)
		}
		fi, err := os.Stat(paths[in])
		if err != nil {
			return nil, err
		}
		for d := path.Dir(in); d != "/" && !dirs[d]; d = path.Dir(d) {
			dirs[d] = true
		}
		files = append(files, File{Path: strings.TrimPrefix(in, "/"), Mode: int64(fi.Mode().Perm()), Data: data})
	}
	var out []File
	for _, d := range slices.Sorted(maps.Keys(dirs)) {
		out = append(out, File{Path: strings.TrimPrefix(d, "/") + "/", Mode: 0o40755})
	}
	return append(out, files...), nil
}
