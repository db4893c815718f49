// Package tests holds end-to-end tests that run pgq as real processes
// against a real PostgreSQL.
package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/internal/pgtest"
)

func TestMain(m *testing.M) {
	code := pgtest.Main(m)
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// Example programs are built once per test binary, into binDir.
var (
	binMu  sync.Mutex
	binDir string
	built  = map[string]*example{}
)

type example struct {
	once sync.Once
	path string
	out  []byte
	err  error
}

// buildExample builds examples/<name> (once) and returns the binary's path.
func buildExample(t *testing.T, name string) string {
	t.Helper()
	binMu.Lock()
	if binDir == "" {
		dir, err := os.MkdirTemp("", "pgq-e2e-")
		if err != nil {
			binMu.Unlock()
			t.Fatalf("temporary directory for example binaries: %v", err)
		}
		binDir = dir
	}
	e := built[name]
	if e == nil {
		e = &example{path: filepath.Join(binDir, name)}
		built[name] = e
	}
	binMu.Unlock()
	e.once.Do(func() {
		e.out, e.err = exec.Command("go", "build", "-o", e.path, "../examples/"+name).CombinedOutput()
	})
	require.NoError(t, e.err, "build examples/%s: %s", name, e.out)
	return e.path
}
