package periodic

import (
	"os"
	"testing"

	"github.com/pgq/pgq/internal/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
