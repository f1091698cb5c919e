package cache

import (
	"fmt"
	"sync"
	"testing"
)

func TestBoundedEvictsOldestFirst(t *testing.T) {
	t.Parallel()
	c := NewBounded[string, int](3)
	for i, k := range []string{"a", "b", "c"} {
		c.Put(k, i)
	}
	c.Put("a", 10) // replacing keeps a's place: it is still the oldest
	c.Put("d", 3)
	if _, ok := c.Get("a"); ok {
		t.Fatal("a should have been evicted first")
	}
	for _, k := range []string{"b", "c", "d"} {
		if _, ok := c.Get(k); !ok {
			t.Fatalf("%s evicted", k)
		}
	}
	if c.Len() != 3 {
		t.Fatalf("len %d", c.Len())
	}
	c.Delete("b")
	c.Put("e", 4) // room after the delete: nothing evicted
	if _, ok := c.Get("c"); !ok {
		t.Fatal("c evicted although there was room")
	}
	c.Put("f", 5) // full again: c is the oldest live entry (b's slot is skipped)
	if _, ok := c.Get("c"); ok {
		t.Fatal("c should have been evicted")
	}
	if v, ok := c.Get("e"); !ok || v != 4 {
		t.Fatalf("e = %d %v", v, ok)
	}
	c.Clear()
	if c.Len() != 0 {
		t.Fatal("clear left entries")
	}
}

func TestBoundedStaysBoundedUnderChurn(t *testing.T) {
	t.Parallel()
	c := NewBounded[int, int](100)
	for i := range 100_000 {
		c.Put(i%150, i)
		if i%3 == 0 {
			c.Delete(i % 150)
		}
	}
	if c.Len() > 100 {
		t.Fatalf("len %d over the bound", c.Len())
	}
	if len(c.ring)-c.head > 2*100+1 {
		t.Fatalf("ring holds %d entries for a bound of 100", len(c.ring)-c.head)
	}
}

func TestBoundedConcurrent(t *testing.T) {
	t.Parallel()
	c := NewBounded[string, int](64)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				k := fmt.Sprint(g, i%100)
				c.Put(k, i)
				c.Get(k)
				if i%7 == 0 {
					c.Delete(k)
				}
			}
		})
	}
	wg.Wait()
	if c.Len() > 64 {
		t.Fatalf("len %d", c.Len())
	}
}
