// Command clonepeak clones one repository with one engine and prints the
// peak resident memory of itself and of its largest child process (KiB),
// so BenchmarkClone can compare go-git (in-process) with the git CLI
// (child processes) on the same repository.
//
//	clonepeak ENGINE URL DIR DEPTH
//
// ENGINE: go-git, git, auto (what clone.engine auto picks here), none
// (clone nothing), or plain-git (`git clone` itself, the baseline).
package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	"github.com/slipwayci/slipway/stages/kinds/clone"
)

func main() {
	if len(os.Args) != 5 {
		fmt.Fprintln(os.Stderr, "usage: clonepeak ENGINE URL DIR DEPTH")
		os.Exit(2)
	}
	engine, url, dir := os.Args[1], os.Args[2], os.Args[3]
	depth, err := strconv.Atoi(os.Args[4])
	if err != nil {
		fmt.Fprintln(os.Stderr, "DEPTH:", err)
		os.Exit(2)
	}
	engines := map[string]clone.Cloner{"go-git": clone.GoGit{}, "git": clone.CLI{}}
	if engine == "auto" {
		engine = clone.AutoEngine(nil)
	}
	if engine == "plain-git" {
		args := []string{"clone", "--quiet", "--single-branch", "--branch", "main"}
		if depth > 0 {
			args = append(args, "--depth", strconv.Itoa(depth))
		}
		if out, err := exec.Command("git", append(args, url, dir)...).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "git clone: %v\n%s", err, out)
			os.Exit(1)
		}
	} else if c, ok := engines[engine]; ok {
		req := clone.Request{URL: url, Ref: "refs/heads/main", Depth: depth, Dir: dir}
		if _, err := c.Clone(context.Background(), req, func(string, ...any) {}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	} else if engine != "none" {
		fmt.Fprintln(os.Stderr, "ENGINE must be go-git, git, auto, plain-git or none")
		os.Exit(2)
	}
	var kids syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &kids)
	fmt.Printf("%d %d\n", highWater(), kids.Maxrss)
}

// highWater is this process's peak resident memory (VmHWM, KiB). Unlike
// ru_maxrss it starts afresh at exec, so it does not count the parent.
func highWater() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return -1
}
