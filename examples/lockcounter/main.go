// Command lockcounter increments a counter row under a pgq named lock, from
// several goroutines, with a read-modify-write that loses updates unless
// the lock serialises it. The end-to-end tests in tests/ run several of
// these processes at once, and kill one that holds the lock.
//
//	go run ./examples/lockcounter -database-url postgres://localhost/app \
//	    -table public.counter -goroutines 4 -increments 250
//
// The table needs a row with id 1: CREATE TABLE counter (id int PRIMARY
// KEY, n bigint NOT NULL); INSERT INTO counter VALUES (1, 0).
//
// With -hold, it takes the lock, prints "holding" and keeps the lock
// until it is killed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgq/pgq/lock"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "lockcounter:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		url        = flag.String("database-url", os.Getenv("PGQ_DATABASE_URL"), "PostgreSQL URL (default $PGQ_DATABASE_URL)")
		schema     = flag.String("schema", "", "pgq schema (default pgq)")
		name       = flag.String("lock", "counter", "name of the lock")
		table      = flag.String("table", "counter", "table holding the counter row (id 1, column n)")
		goroutines = flag.Int("goroutines", 4, "goroutines incrementing at once")
		increments = flag.Int("increments", 100, "increments by this process, shared by its goroutines")
		hold       = flag.Bool("hold", false, "take the lock, print \"holding\" and keep it until killed")
	)
	flag.Parse()
	if *url == "" {
		return errors.New("no database: pass -database-url or set PGQ_DATABASE_URL")
	}
	if *goroutines < 1 || *increments < 0 {
		return errors.New("-goroutines must be positive and -increments not negative")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	pool, err := pgxpool.New(ctx, *url)
	if err != nil {
		return err
	}
	defer pool.Close()
	locker, err := lock.New(pool, &lock.Config{Schema: *schema})
	if err != nil {
		return err
	}
	defer locker.Close()

	if *hold {
		h, err := locker.Lock(ctx, *name)
		if err != nil {
			return err
		}
		fmt.Println("holding")
		select {
		case <-ctx.Done():
		case <-h.Done():
			return context.Cause(h.Context())
		}
		return h.Unlock(context.WithoutCancel(ctx))
	}

	tbl := pgx.Identifier{*table}
	if s, t, ok := strings.Cut(*table, "."); ok {
		tbl = pgx.Identifier{s, t}
	}
	read := "SELECT n FROM " + tbl.Sanitize() + " WHERE id = 1"
	write := "UPDATE " + tbl.Sanitize() + " SET n = $1 WHERE id = 1"

	// Each goroutine takes its share of the increments.
	var wg sync.WaitGroup
	errs := make(chan error, *goroutines)
	for g := range *goroutines {
		share := *increments / *goroutines
		if g < *increments%*goroutines {
			share++
		}
		wg.Go(func() {
			for range share {
				err := locker.WithLock(ctx, *name, func(ctx context.Context) error {
					// Read, then write in a second statement: without the
					// lock, two goroutines would write the same value.
					var n int64
					if err := pool.QueryRow(ctx, read).Scan(&n); err != nil {
						return err
					}
					_, err := pool.Exec(ctx, write, n+1)
					return err
				})
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	fmt.Println("done")
	return nil
}
