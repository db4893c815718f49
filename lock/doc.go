// Package lock is a distributed mutex on PostgreSQL advisory locks.
//
// A lock has a name. The name is hashed, with the pgq schema, to the 64-bit
// key that PostgreSQL's advisory-lock functions take (see Key for the exact
// algorithm; pgq.lock_key computes the same in SQL, so programs in other
// languages can share locks with Go programs).
//
// There are two kinds of lock:
//
//   - A session lock (Locker.Lock, Locker.TryLock, Locker.WithLock) is held
//     by a connection of its own, opened with the pool's settings but not
//     taken from the pool, until Held.Unlock or until that connection ends.
//     PostgreSQL releases it when the connection ends for any reason: the
//     process crashed, was killed, or lost the network, or an operator
//     terminated the backend. A small keepalive loop notices a lost
//     connection within about a second and cancels Held.Context, so the
//     holder can stop work that the lock no longer protects.
//
//   - A transaction lock (LockTx, TryLockTx) is taken inside the caller's
//     transaction and released by its commit or rollback. It costs no
//     extra connection and cannot outlive the work it protects, which
//     makes it the better choice whenever the protected work fits in one
//     transaction.
//
// A lost session lock is the one failure a holder must handle: once the
// connection is gone another process may take the lock, while the holder
// may still be running. Held.Context and the context WithLock passes to its
// function are cancelled at that moment; the holder should stop and not
// commit its work. For effects that must never overlap, use a transaction
// lock and do the work in that transaction, or fence the work with a
// version check.
//
// Session locks need a direct connection to PostgreSQL (or a pgbouncer
// pool in session mode): behind a transaction-mode pooler the lock would
// stay with a server connection that other clients then use.
//
// docs/locks.md has the design, the key derivation and the failure cases.
package lock
