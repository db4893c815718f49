package queue_test

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgq/pgq/internal/pgtest"
	"github.com/pgq/pgq/queue"
)

type WelcomeEmail struct {
	To string `json:"to"`
}

func (WelcomeEmail) TaskName() string { return "emails.welcome" }

// Enqueue a job inside the transaction that creates the user it is about:
// both commit, or neither does.
func ExampleClient_EnqueueTx() {
	ctx := context.Background()
	db, release, err := pgtest.Acquire(ctx) // your *pgxpool.Pool and schema
	if err != nil {
		panic(err)
	}
	defer release()

	client, err := queue.NewClient(db.Pool, &queue.Config{Schema: db.Schema})
	if err != nil {
		panic(err)
	}
	var job queue.Enqueued
	err = pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		// tx.Exec(ctx, "INSERT INTO users ...") goes here.
		job, err = client.EnqueueTx(ctx, tx, WelcomeEmail{To: "ada@example.com"}, &queue.Options{
			Queue:     "mail",
			Countdown: 10 * time.Second,
		})
		return err
	})
	if err != nil {
		panic(err)
	}
	stored, err := client.Job(ctx, job.ID)
	if err != nil {
		panic(err)
	}
	fmt.Println(stored.Task, stored.Queue, stored.State, string(stored.Args))
	// Output: emails.welcome mail scheduled {"to": "ada@example.com"}
}

// Routes send tasks to queues by name; the call's options still win.
// Client.BeginFunc is pgx.BeginFunc on the client's pool whose commit
// wakes the workers afterwards, without waiting for it, the faster form
// with many concurrent producers (docs/architecture.md, "Waking workers").
func ExampleClient_BeginFunc() {
	ctx := context.Background()
	db, release, err := pgtest.Acquire(ctx) // your *pgxpool.Pool and schema
	if err != nil {
		panic(err)
	}
	defer release()

	client, err := queue.NewClient(db.Pool, &queue.Config{Schema: db.Schema})
	if err != nil {
		panic(err)
	}
	var job queue.Enqueued
	err = client.BeginFunc(ctx, func(tx *queue.Tx) error {
		// tx.Exec(ctx, "INSERT INTO users ...") goes here.
		job, err = client.EnqueueTx(ctx, tx, WelcomeEmail{To: "ada@example.com"}, &queue.Options{Queue: "mail"})
		return err
	})
	if err != nil {
		panic(err)
	}
	// Commit did not wait for the wake-up; a program about to exit waits
	// for it, a long-running one need not.
	if err := client.Flush(ctx); err != nil {
		panic(err)
	}
	stored, err := client.Job(ctx, job.ID)
	if err != nil {
		panic(err)
	}
	fmt.Println(stored.Task, stored.Queue, stored.State)
	// Output: emails.welcome mail available
}

// Send the enqueue together with the transaction's own statements: one
// round trip for both.
func ExampleClient_EnqueueBatched() {
	ctx := context.Background()
	db, release, err := pgtest.Acquire(ctx) // your *pgxpool.Pool and schema
	if err != nil {
		panic(err)
	}
	defer release()

	client, err := queue.NewClient(db.Pool, &queue.Config{Schema: db.Schema})
	if err != nil {
		panic(err)
	}
	var job *queue.BatchedJob
	err = client.BeginFunc(ctx, func(tx *queue.Tx) error {
		batch := &pgx.Batch{}
		// batch.Queue("INSERT INTO users ...", ...) goes here.
		job, err = client.EnqueueBatched(ctx, tx, batch, WelcomeEmail{To: "ada@example.com"}, &queue.Options{Queue: "mail"})
		if err != nil {
			return err // invalid input: nothing was queued
		}
		return tx.SendBatch(ctx, batch).Close()
	})
	if err != nil {
		panic(err)
	}
	if err := client.Flush(ctx); err != nil { // before exiting: see ExampleClient_BeginFunc
		panic(err)
	}
	enqueued, err := job.Result()
	if err != nil {
		panic(err)
	}
	fmt.Println(enqueued.Task, enqueued.Queue, enqueued.State)
	// Output: emails.welcome mail available
}

func ExampleRoute() {
	ctx := context.Background()
	db, release, err := pgtest.Acquire(ctx)
	if err != nil {
		panic(err)
	}
	defer release()

	client, err := queue.NewClient(db.Pool, &queue.Config{
		Schema: db.Schema,
		Routes: []queue.Route{{Pattern: "emails.*", Options: queue.Options{Queue: "mail", Priority: queue.Ptr(5)}}},
	})
	if err != nil {
		panic(err)
	}
	routed, _ := client.Delay(ctx, WelcomeEmail{})
	overridden, _ := client.Enqueue(ctx, WelcomeEmail{}, &queue.Options{Queue: "urgent"})
	fmt.Println(routed.Queue, overridden.Queue)
	// Output: mail urgent
}
