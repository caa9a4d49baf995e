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
	"net/http"
	"path"
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

// assets maps each static file's name to its content-hashed URL, so
// browsers may cache them for good and a new binary is never served a
// stale script.
var assets = func() map[string]string {
	m := map[string]string{}
	fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := staticFS.ReadFile(p)
		sum := sha256.Sum256(b)
		name := strings.TrimPrefix(p, "static/")
		m[name] = "/ui/static/" + hex.EncodeToString(sum[:6]) + "/" + name
		return nil
	})
	return m
}()

// Asset is the URL of a static file.
func Asset(name string) string { return assets[name] }

// Static serves /ui/static/{hash}/{name}; a hash that is not the file's
// is answered with the file, uncached.
func Static() http.Handler {
	sub, _ := fs.Sub(staticFS, "static")
	start := time.Now()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest := strings.TrimPrefix(r.URL.Path, "/ui/static/")
		hash, name, ok := strings.Cut(rest, "/")
		if !ok || assets[name] == "" {
			http.NotFound(w, r)
			return
		}
		if assets[name] == "/ui/static/"+hash+"/"+name {
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		}
		w.Header().Set("X-Content-Type-Options", "nosniff")
		f, err := sub.Open(name)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		defer f.Close()
		http.ServeContent(w, r, name, start, f.(io.ReadSeeker))
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
