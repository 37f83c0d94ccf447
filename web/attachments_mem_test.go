package web

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"testing"
	"time"

	"agentdesk/agentdesk"
)

// TestAttachmentMemory measures what one 20 MB upload and download
// allocate in this process (server and client; the client's part is small:
// the body is built before measuring and the answer is discarded), as
// runtime.MemStats.TotalAlloc before and after. It is a measurement, not
// an assertion: run it with AGENTDESK_MEASURE=1 (figures in BENCHMARKS.md,
// "Attachments").
func TestAttachmentMemory(t *testing.T) {
	if os.Getenv("AGENTDESK_MEASURE") == "" {
		t.Skip("set AGENTDESK_MEASURE=1 to measure")
	}
	const size = 20 << 20
	for _, c := range []struct {
		name    string
		blobDir bool
		key     bool
	}{
		{"database", false, false},
		{"database, Idempotency-Key", false, true},
		{"blob-dir", true, false},
		{"blob-dir, Idempotency-Key", true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			var opts []Option
			if c.blobDir {
				opts = append(opts, WithBlobDir(t.TempDir(), 1<<20))
			}
			e := newEnv(t, opts...)
			agent := e.clients["agent"]
			data := make([]byte, size)
			rand.Read(data) //nolint:errcheck
			ct, body := multipartFile(t, "big.bin", "", data)
			req, _ := http.NewRequest("POST", agent.base+"/api/v1/attachments", bytes.NewReader(body))
			req.Header.Set("Content-Type", ct)
			if c.key {
				req.Header.Set(IdempotencyHeader, "mem")
			}
			var a agentdesk.Attachment
			up := allocated(t, func() {
				res, err := agent.http.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer res.Body.Close()
				if res.StatusCode != http.StatusCreated {
					t.Fatalf("upload: %d", res.StatusCode)
				}
				if err := json.NewDecoder(res.Body).Decode(&a); err != nil {
					t.Fatal(err)
				}
			})
			var n int64
			start := time.Now()
			down := allocated(t, func() {
				res, err := agent.http.Get(agent.base + a.URL)
				if err != nil {
					t.Fatal(err)
				}
				defer res.Body.Close()
				if n, err = io.Copy(io.Discard, res.Body); err != nil || n != size {
					t.Fatalf("download: %d bytes, %v", n, err)
				}
			})
			t.Logf("20 MB %s: upload allocates %s, download %s (download took %v)", c.name, mb(up), mb(down), time.Since(start).Round(time.Millisecond))
		})
	}
}

// allocated is how many bytes were allocated while f ran.
func allocated(t *testing.T, f func()) uint64 {
	t.Helper()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func mb(n uint64) string { return fmt.Sprintf("%.1f MB", float64(n)/(1<<20)) }
