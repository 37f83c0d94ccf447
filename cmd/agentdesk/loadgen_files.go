package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"

	"agentdesk/agentdesk"
	"agentdesk/agentdesk/postgres"
	"agentdesk/web"
)

func init() {
	registerLoadgen("files", "attachments over HTTP against a running server: upload and download of large (25 MB) and small (10 KB) files by concurrent clients; MB/s, files/s, p50/p99", loadgenFiles)
}

// loadgenFiles measures what the desk's composer and the download links
// see: POST /api/v1/attachments (multipart) and GET .../content, through
// the real server, each file with bytes of its own (random, so no upload
// reuses a stored blob). It makes an account, an admin and an API token of
// its own and, unless --keep, deletes the files it stored at the end.
func loadgenFiles(ctx context.Context, args []string) error {
	fs := newFlagSet("loadgen files")
	dbURL := databaseURLFlag(fs)
	base := fs.String("url", "http://localhost:8080", "server to measure")
	clients := fs.Int("clients", 8, "concurrent clients")
	bigN := fs.Int("big", 8, "large files")
	bigSize := fs.Int("big-bytes", 25<<20, "size of a large file (the server's --attachment-max-bytes is 25 MB by default)")
	smallN := fs.Int("small", 1000, "small files")
	smallSize := fs.Int("small-bytes", 10<<10, "size of a small file")
	keep := fs.Bool("keep", false, "keep the files stored")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *dbURL == "" {
		return errors.New("loadgen files: --database-url (or DATABASE_URL) of the server's database is required, to make an account and a token")
	}
	if *clients < 1 || *bigN < 0 || *smallN < 0 || *bigSize < 1 || *smallSize < 1 {
		return errors.New("loadgen files: --clients, --big-bytes and --small-bytes must be positive, --big and --small not negative")
	}
	db, err := postgres.Open(ctx, *dbURL, 2)
	if err != nil {
		return err
	}
	defer db.Close()
	store := postgres.NewStore(db)
	acct, err := store.CreateAccount(ctx, fmt.Sprintf("loadgen files %d", time.Now().UnixNano()))
	if err != nil {
		return err
	}
	admin := &agentdesk.Agent{Email: "files@loadgen.local", Name: "Loadgen", Role: agentdesk.RoleAdmin}
	if err := store.CreateAgent(ctx, acct.ID, admin, ""); err != nil {
		return err
	}
	// A token per client: the server lets one uploader have only
	// web.DefaultUploadsInFlight uploads in progress.
	tokens := make([]string, *clients)
	for i := range tokens {
		if _, tokens[i], err = web.CreateAPIToken(ctx, store, agentdesk.Actor{AccountID: acct.ID, AgentID: admin.ID, Role: agentdesk.RoleAdmin}, fmt.Sprint("loadgen files ", i), agentdesk.RoleAdmin, nil); err != nil {
			return fmt.Errorf("loadgen files: token: %w", err)
		}
	}
	if !*keep {
		defer func() {
			if err := dropAccountFiles(context.WithoutCancel(ctx), store, acct.ID); err != nil {
				fmt.Fprintf(os.Stderr, "loadgen files: removing the files: %v\n", err)
			}
		}()
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *clients, DisableCompression: true}}
	f := filesLoad{ctx: ctx, hc: hc, base: *base}

	fmt.Printf("loadgen files: %s, %d clients, account %d\n", *base, *clients, acct.ID)
	fmt.Printf("%-28s %6s %9s %9s %10s %10s %10s\n", "", "files", "seconds", "files/s", "MB/s", "p50", "p99")
	for _, set := range []struct {
		name string
		n    int
		size int
	}{{fmt.Sprintf("%d MB", *bigSize>>20), *bigN, *bigSize}, {fmt.Sprintf("%d KB", *smallSize>>10), *smallN, *smallSize}} {
		if set.n == 0 {
			continue
		}
		files := make([]loadFile, set.n)
		for i := range files {
			files[i].data = make([]byte, set.size)
			r := rand.NewChaCha8([32]byte{byte(i), byte(i >> 8), byte(set.size), byte(set.size >> 8), byte(set.size >> 16)})
			r.Read(files[i].data) //nolint:errcheck // never fails
			files[i].sum = sha256.Sum256(files[i].data)
			files[i].token = tokens[i%len(tokens)]
		}
		for _, op := range []struct {
			name string
			fn   func(*loadFile) error
		}{{"upload", f.upload}, {"download", f.download}} {
			lat, wall, err := forEachFile(files, *clients, op.fn)
			if err != nil {
				return fmt.Errorf("loadgen files: %s %s: %w", set.name, op.name, err)
			}
			slices.Sort(lat)
			fmt.Printf("%-28s %6d %9.2f %9.1f %10.1f %10s %10s\n", op.name+" "+set.name, set.n, wall.Seconds(), float64(set.n)/wall.Seconds(),
				float64(set.n*set.size)/(1<<20)/wall.Seconds(), pct(lat, 50), pct(lat, 99))
		}
	}
	return nil
}

type loadFile struct {
	data  []byte
	sum   [32]byte
	url   string
	token string // its uploader's, which may read it while it is on no message
}

type filesLoad struct {
	ctx  context.Context
	hc   *http.Client
	base string
}

// upload streams one multipart upload (no copy of the file into a body
// buffer: the client should cost the machine as little as it can).
func (f filesLoad) upload(lf *loadFile) error {
	const boundary = "loadgenfilesboundary"
	head := "--" + boundary + "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"load.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n"
	tail := "\r\n--" + boundary + "--\r\n"
	req, err := http.NewRequestWithContext(f.ctx, "POST", f.base+"/api/v1/attachments",
		io.MultiReader(bytes.NewReader([]byte(head)), bytes.NewReader(lf.data), bytes.NewReader([]byte(tail))))
	if err != nil {
		return err
	}
	req.ContentLength = int64(len(head) + len(lf.data) + len(tail))
	req.Header.Set("Content-Type", "multipart/form-data; boundary="+boundary)
	req.Header.Set("Authorization", "Bearer "+lf.token)
	res, err := f.hc.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusCreated {
		return fmt.Errorf("upload: %d %s", res.StatusCode, bytes.TrimSpace(body))
	}
	var a agentdesk.Attachment
	if err := json.Unmarshal(body, &a); err != nil {
		return err
	}
	lf.url = a.URL
	return nil
}

// download reads the file back and checks its bytes.
func (f filesLoad) download(lf *loadFile) error {
	req, err := http.NewRequestWithContext(f.ctx, "GET", f.base+lf.url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+lf.token)
	res, err := f.hc.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	h := sha256.New()
	n, err := io.Copy(h, res.Body)
	if err != nil {
		return err
	}
	if res.StatusCode != http.StatusOK || n != int64(len(lf.data)) || !bytes.Equal(h.Sum(nil), lf.sum[:]) {
		return fmt.Errorf("download %s: %d, %d bytes, content differs", lf.url, res.StatusCode, n)
	}
	return nil
}

// forEachFile runs fn on every file with w clients at once; it returns
// each call's latency and the wall time of all.
func forEachFile(files []loadFile, w int, fn func(*loadFile) error) ([]time.Duration, time.Duration, error) {
	lat := make([]time.Duration, len(files))
	var mu sync.Mutex
	next := 0
	var first error
	var wg sync.WaitGroup
	start := time.Now()
	for range w {
		wg.Go(func() {
			for {
				mu.Lock()
				i := next
				next++
				stop := first != nil
				mu.Unlock()
				if i >= len(files) || stop {
					return
				}
				t := time.Now()
				if err := fn(&files[i]); err != nil {
					mu.Lock()
					first = cmpErr(first, err)
					mu.Unlock()
					return
				}
				lat[i] = time.Since(t)
			}
		})
	}
	wg.Wait()
	return lat, time.Since(start), first
}

// dropAccountFiles deletes the run's uploads and their blobs (and the
// blobs' files, when the server keeps them under --blob-dir and this
// process sees the same directory).
func dropAccountFiles(ctx context.Context, store *postgres.Store, accountID int64) error {
	db := store.DB()
	if _, err := db.Exec(ctx, `DELETE FROM uploads WHERE account_id = $1`, accountID); err != nil {
		return err
	}
	rows, err := db.Query(ctx, `DELETE FROM email_blobs WHERE account_id = $1 RETURNING path`, accountID)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var p *string
		if err := rows.Scan(&p); err != nil {
			return err
		}
		if p != nil {
			os.Remove(*p) //nolint:errcheck // another machine's directory, perhaps
		}
	}
	return rows.Err()
}
