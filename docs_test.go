package slipway_test

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The docs hold together: the README stays short, every relative link of
// a Markdown file leads to a file in the repository, none leads out of
// it, and the screenshots are PNGs small enough to keep in git.
func TestDocsHoldTogether(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(readme, []byte("\n")); n > 250 {
		t.Errorf("README.md is %d lines; keep it to 250 and put the rest in docs/", n)
	}
	pages, _ := filepath.Glob("docs/*.md")
	pages = append(pages, "README.md")
	link := regexp.MustCompile(`\]\(([^)#\s]+)(#[^)]*)?\)`)
	for _, page := range pages {
		text, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range link.FindAllStringSubmatch(string(text), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			path := filepath.Join(filepath.Dir(page), target)
			if rel, err := filepath.Rel(".", path); err != nil || strings.HasPrefix(rel, "..") {
				t.Errorf("%s links to %s, outside the repository", page, target)
				continue
			}
			if _, err := os.Stat(path); err != nil {
				t.Errorf("%s links to %s, which is not there", page, target)
			}
		}
	}
	shots, _ := filepath.Glob("docs/screenshots/*")
	if len(shots) == 0 {
		t.Error("docs/screenshots/ is empty: make screenshots writes it")
	}
	for _, shot := range shots {
		data, err := os.ReadFile(shot)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")) || len(data) > 300<<10 {
			t.Errorf("%s: %d bytes; a screenshot is a PNG under 300 KB", shot, len(data))
		}
	}
}
