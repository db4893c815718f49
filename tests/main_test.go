// Package tests holds end-to-end tests that run pgq as real processes
// against a real PostgreSQL.
package tests

import (
	"os"
	"testing"

	"github.com/pgq/pgq/internal/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
