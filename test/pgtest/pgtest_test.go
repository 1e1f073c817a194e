package pgtest_test

import (
	"context"
	"testing"

	"github.com/psgw/psgw/test/pgtest"
)

func TestStartRestart(t *testing.T) {
	s := pgtest.Start(t)
	db := s.DB()
	s.Exec(db, "CREATE TABLE t (n int)")
	s.Exec(db, "INSERT INTO t VALUES (1)")
	s.Restart()
	s.Exec(db, "INSERT INTO t VALUES (2)")
	var n int
	if err := db.QueryRowContext(context.Background(), "SELECT sum(n) FROM t").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("sum after restart: got %d, want 3", n)
	}
}
