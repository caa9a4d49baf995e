package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Pages are the templates, one per page, each with the shared layout.
type Pages struct {
	pages map[string]*template.Template
}

// Load parses every page with the layout.
func Load() (*Pages, error) {
	layout, err := template.New("layout.html").Funcs(funcs).Funcs(template.FuncMap{"asset": Asset}).
		ParseFS(templateFS, "templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("parsing the UI layout: %w", err)
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	p := &Pages{pages: map[string]*template.Template{}}
	for _, name := range names {
		base := path.Base(name)
		if base == "layout.html" {
			continue
		}
		t, err := template.Must(layout.Clone()).ParseFS(templateFS, name)
		if err != nil {
			return nil, fmt.Errorf("parsing the UI page %s: %w", base, err)
		}
		p.pages[strings.TrimSuffix(base, ".html")] = t
	}
	return p, nil
}

// Render writes page with data in the layout; it renders into memory
// first, so a template error answers 500 rather than half a page.
func (p *Pages) Render(w http.ResponseWriter, code int, page string, data any) error {
	t, ok := p.pages[page]
	if !ok {
		return fmt.Errorf("no UI page %q", page)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout.html", data); err != nil {
		return fmt.Errorf("rendering the UI page %s: %w", page, err)
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", CSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
	w.WriteHeader(code)
	_, err := io.Copy(w, &buf)
	return err
}

// CSP allows only the engine's own script and style: no inline script,
// no other origin, no framing.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// asset is a static file, ready to serve.
type asset struct {
	url, etag, contentType string
	data                   []byte
}

// assets are the static files by name, each with a content-hashed URL so
// browsers may cache them for good and a new binary is never served a
// stale script.
var assets = func() map[string]asset {
	m := map[string]asset{}
	fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := staticFS.ReadFile(p)
		sum := sha256.Sum256(b)
		hash := hex.EncodeToString(sum[:6])
		name := strings.TrimPrefix(p, "static/")
		m[name] = asset{url: "/ui/static/" + hash + "/" + name, etag: `"` + hash + `"`, contentType: mime.TypeByExtension(path.Ext(name)), data: b}
		return nil
	})
	return m
}()

// Asset is the URL of a static file.
func Asset(name string) string { return assets[name].url }

// Static serves /ui/static/{hash}/{name}: cached for good under its own
// hash, uncached under any other. (No Range requests: the files are small.)
func Static() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hash, name, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/ui/static/"), "/")
		a, found := assets[name]
		if !ok || !found {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Cache-Control", "no-cache")
		if a.url == "/ui/static/"+hash+"/"+name {
			h.Set("Cache-Control", "public, max-age=31536000, immutable")
		}
		h.Set("ETag", a.etag)
		h.Set("X-Content-Type-Options", "nosniff")
		if r.Header.Get("If-None-Match") == a.etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		h.Set("Content-Type", a.contentType)
		h.Set("Content-Length", strconv.Itoa(len(a.data)))
		w.Write(a.data)
	})
}

// Page is what every page renders with: the layout's part (who is logged
// in, the CSRF token its forms carry, the live stream to open) and the
// page's own Body.
type Page struct {
	Title string
	Nav   string // the main navigation entry this page belongs to
	User  string // the token name logged in; "" on the login page
	Role  string
	Admin bool
	CSRF  string
	Live  string // the URL of this page's event stream; "" for none
	Flash string // what the last action did
	Now   time.Time
	Body  any
}
