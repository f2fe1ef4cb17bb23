package defaults

import (
	"testing"
	"time"
)

func TestPositive(t *testing.T) {
	if got := Positive(0, 3); got != 3 {
		t.Errorf("Positive(0, 3) = %d", got)
	}
	if got := Positive(-time.Second, time.Minute); got != time.Minute {
		t.Errorf("Positive(-1s, 1m) = %s", got)
	}
	if got := Positive(2.5, 1); got != 2.5 {
		t.Errorf("Positive(2.5, 1) = %g", got)
	}
}
