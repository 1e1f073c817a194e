// Package ledger is the delivery ledger: one record per incident saying where it is on its way
// to the national service (its state, history, national id and the bookkeeping that keeps
// delivery exactly once). It owns the entry, its states and every transition between them (as
// methods of Entry, so that a new state is added in one place), the rules of resolving and
// reviewing, the key-value layout the entries are stored in (sharded buckets), and the index
// that the status page, searches and the ingest path read instead of the buckets.
//
// The stages are side by side on top of it and the queue: the mapper records each mapped
// record, the forwarder each send, the patients stage none; ops presents it. Nothing here
// sends, maps or serves HTTP. docs/architecture.md draws the house; docs/delivery.md states the
// rules the transitions keep.
package ledger
