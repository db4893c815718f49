package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"
)

func TestConnectCause(t *testing.T) {
	t.Parallel()
	refused := func(addr string) error {
		op := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
		return fmt.Errorf("%s (localhost): dial error: %w", addr, op)
	}
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"every address refused, said once", fmt.Errorf("failed to connect: %w", errors.Join(refused("[::1]:5432"), refused("127.0.0.1:5432"))), "connection refused"},
		{"server's own message", fmt.Errorf("failed to connect: %w", errors.Join(
			fmt.Errorf("127.0.0.1:5432 (localhost): server error: %w", &pgconn.PgError{Severity: "FATAL", Code: "28P01", Message: `password authentication failed for user "app"`}))),
			`password authentication failed for user "app" (SQLSTATE 28P01)`},
		{"timeout", fmt.Errorf("failed to connect: %w", fmt.Errorf("dial error: %w", context.DeadlineExceeded)), "timed out"},
		{"different causes, each once", errors.Join(refused("[::1]:5432"), errors.New("tls:\nbad certificate")), "connection refused; tls: bad certificate"},
	}
	for _, tc := range cases {
		require.Equal(t, tc.want, connectCause(tc.err), tc.name)
	}
}

func TestRedactURL(t *testing.T) {
	t.Parallel()
	require.Equal(t, "postgres://app:xxxxx@db:5432/app", redactURL("postgres://app:secret@db:5432/app"))
	require.Equal(t, "(your database URL)", redactURL("host=db password=secret"))
}
