package migration

import (
	"strings"
	"testing"
	"testing/fstest"
)

func TestLoadOrders(t *testing.T) {
	fsys := fstest.MapFS{
		"m/0010_later.sql":  {Data: []byte("B")},
		"m/0002_second.sql": {Data: []byte("A")},
		"m/README.md":       {Data: []byte("not a migration")},
	}
	files, err := Load(fsys, "m")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 || files[0].Version != 2 || files[1].Version != 10 || files[0].SQL != "A" || files[1].Name != "0010_later.sql" {
		t.Fatalf("files = %+v", files)
	}
}

func TestLoadRejectsBadNames(t *testing.T) {
	for name, fsys := range map[string]fstest.MapFS{
		"no number":   {"m/init.sql": {}},
		"zero":        {"m/0000_init.sql": {}},
		"no describe": {"m/0001.sql": {}},
		"same number": {"m/0001_a.sql": {}, "m/01_b.sql": {}},
	} {
		if _, err := Load(fsys, "m"); err == nil || !strings.Contains(err.Error(), "migration") {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}
