package pgserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// localCluster is a PostgreSQL cluster in a temporary directory, run as a
// child process of this one.
type localCluster struct {
	bin  string // directory holding initdb and postgres
	dir  string // temporary directory: data/, the socket, the log
	port int
	cred *syscall.Credential // non-nil when we run as root
	log  io.Writer
	// durable keeps PostgreSQL's default durability settings.
	durable bool

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// BinDir finds the directory with PostgreSQL's server binaries:
// $PGQ_PG_BIN, the newest /usr/lib/postgresql/*/bin, or initdb on $PATH.
func BinDir() (string, error) {
	if d := os.Getenv("PGQ_PG_BIN"); d != "" {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err != nil {
			return "", fmt.Errorf("PGQ_PG_BIN is %s, which has no initdb: point it at PostgreSQL's bin directory", d)
		}
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("PostgreSQL server binaries not found: install them (Debian: apt-get install postgresql) or set PGQ_PG_BIN, or point PGQ_TEST_DATABASE_URL / --database-url at a server")
}

func versionOf(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

func startLocal(ctx context.Context, opts *Options) (*Server, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "pgq-postgres-")
	if err != nil {
		return nil, err
	}
	c := &localCluster{bin: bin, dir: dir, log: opts.Log, durable: opts.Durable}
	if c.log == nil {
		c.log = io.Discard
	}
	fail := func(err error) (*Server, error) {
		_ = os.RemoveAll(dir)
		return nil, err
	}

	// initdb and postgres refuse to run as root; borrow an ordinary user.
	if os.Geteuid() == 0 {
		cred, err := unprivilegedUser()
		if err != nil {
			return fail(err)
		}
		c.cred = cred
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return fail(fmt.Errorf("hand %s to uid %d: %w", dir, cred.Uid, err))
		}
	}

	initdb := c.command(ctx, "initdb", "-D", c.dataDir(), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync", "--locale=C")
	if out, err := initdb.CombinedOutput(); err != nil {
		return fail(fmt.Errorf("initdb: %w\n%s", err, out))
	}

	c.port, err = freePort()
	if err != nil {
		return fail(err)
	}
	if err := c.start(ctx); err != nil {
		return fail(err)
	}
	return &Server{
		URL:   c.url(),
		Kind:  "local",
		local: c,
		stop:  c.destroy,
	}, nil
}

func (c *localCluster) dataDir() string { return filepath.Join(c.dir, "data") }

func (c *localCluster) url() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.port)
}

func (c *localCluster) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(c.bin, name), args...)
	cmd.Dir = c.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred, Setpgid: true}
	return cmd
}

// start runs postgres with settings for a disposable cluster: no fsync,
// because a crash loses nothing anyone wants to keep (unless durable).
func (c *localCluster) start(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	args := []string{
		"-D", c.dataDir(),
		"-p", strconv.Itoa(c.port),
		"-k", c.dir,
		"-c", "listen_addresses=127.0.0.1",
		"-c", "max_connections=300",
		"-c", "shared_buffers=256MB",
		"-c", "log_min_messages=warning",
	}
	if !c.durable {
		args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	// Not CommandContext: the server must outlive the start-up context.
	cmd := c.command(context.Background(), "postgres", args...)
	cmd.Stdout = c.log
	cmd.Stderr = c.log
	// Take the server down with us if this process dies without Stop.
	cmd.SysProcAttr.Pdeathsig = syscall.SIGQUIT
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	c.cmd, c.exited = cmd, exited
	if err := waitReady(ctx, c.url(), exited); err != nil {
		_ = cmd.Process.Signal(syscall.SIGQUIT)
		<-exited
		return err
	}
	return nil
}

// shutdown stops the server: SIGINT is PostgreSQL's fast shutdown, SIGQUIT
// its immediate one (no checkpoint; crash recovery at the next start).
func (c *localCluster) shutdown(ctx context.Context, immediate bool) error {
	c.mu.Lock()
	cmd, exited := c.cmd, c.exited
	c.cmd = nil
	c.mu.Unlock()
	if cmd == nil {
		return nil
	}
	sig := syscall.SIGINT
	if immediate {
		sig = syscall.SIGQUIT
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-exited:
		return nil
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		<-exited
		return ctx.Err()
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
		return errors.New("postgres did not stop within 30s; killed it")
	}
}

func (c *localCluster) restart(ctx context.Context, immediate bool) error {
	if err := c.shutdown(ctx, immediate); err != nil {
		return err
	}
	return c.start(ctx)
}

func (c *localCluster) destroy(ctx context.Context) error {
	err := c.shutdown(ctx, false)
	return errors.Join(err, os.RemoveAll(c.dir))
}

// unprivilegedUser picks the account PostgreSQL runs as when we are root:
// "postgres" where the package created it, else "nobody".
func unprivilegedUser() (*syscall.Credential, error) {
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
	}
	return nil, errors.New("running as root and found neither a postgres nor a nobody user to run PostgreSQL as")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
