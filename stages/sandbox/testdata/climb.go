// climb is what a hostile image ships to leave a chroot: root of its user
// namespace may still chroot, so it chroots into a directory without
// entering it, climbs with "..", and chroots where it stops. Then it
// reads and writes the paths it is given, printing what happened.
package main

import (
	"fmt"
	"os"
	"syscall"
)

func main() {
	_ = os.MkdirAll("/cell", 0o755)
	_ = syscall.Chdir("/")
	if err := syscall.Chroot("/cell"); err != nil {
		fmt.Println("chroot:", err)
	}
	for range 100 {
		_ = syscall.Chdir("..")
	}
	if err := syscall.Chroot("."); err != nil {
		fmt.Println("chroot .:", err)
	}
	for _, p := range os.Args[1:] {
		if b, err := os.ReadFile(p); err == nil {
			fmt.Printf("READ %s: %q\n", p, b)
		}
		if err := os.WriteFile(p+".written", []byte("climbed out\n"), 0o644); err == nil {
			fmt.Printf("WROTE %s.written\n", p)
		}
	}
}
