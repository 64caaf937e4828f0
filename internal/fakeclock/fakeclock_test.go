package fakeclock

import (
	"testing"
	"time"
)

func TestClockMovesOnlyWhenTold(t *testing.T) {
	t.Parallel()
	c := New()
	start := c.Now()
	if !c.Now().Equal(start) {
		t.Fatal("the clock moved by itself")
	}
	c.Advance(90 * time.Second)
	if got := c.Now().Sub(start); got != 90*time.Second {
		t.Errorf("after Advance(90s) the clock moved %s", got)
	}
}
