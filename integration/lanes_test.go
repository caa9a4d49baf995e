package integration

import (
	"sync"
	"testing"
)

// The tests here run side by side in two lanes: those that start the
// local cluster one at a time, as the machine has one node, and the
// others one at a time beside them — a build in the sandbox or a
// PostgreSQL engine runs while a canary waits on Argo CD. Each test
// begins with onNode(t) or offNode(t); TestMain lifts go test's limit of
// parallel tests, the lanes being the limit.

var (
	nodeLane, otherLane = make(chan struct{}, 1), make(chan struct{}, 1)
	onNodeTests         sync.Map // names of the tests that said onNode
)

// onNode runs t in the node's lane: it may start the local cluster.
func onNode(t *testing.T) {
	t.Parallel()
	take(t, nodeLane)
	onNodeTests.Store(t.Name(), true)
}

// offNode runs t in the other lane: it must not start the cluster.
func offNode(t *testing.T) {
	t.Parallel()
	take(t, otherLane)
}

func take(t *testing.T, lane chan struct{}) {
	lane <- struct{}{}
	t.Cleanup(func() { <-lane })
}

// mayStartCluster fails a test that starts the cluster outside the
// node's lane, where it would wait on another test's node.
func mayStartCluster(tb testing.TB) {
	if t, ok := tb.(*testing.T); ok {
		if _, on := onNodeTests.Load(t.Name()); !on {
			t.Fatalf("%s starts the local cluster: it must begin with onNode(t)", t.Name())
		}
	}
}
