package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"path/filepath"
	"testing"

	"agentdesk/agentdesk"
)

// A relative --blob-dir is made absolute at start: the file's row names it
// by its absolute path, and a server started from another directory serves
// it.
func TestServeRelativeBlobDir(t *testing.T) {
	if testing.Short() {
		t.Skip("starts server processes")
	}
	t.Parallel()
	ctx := context.Background()
	fx := newAccountDB(t, "Blob Co", "blob.test", 2)
	db, url, acct := fx.db, fx.url, fx.acct
	token := fx.token(t, "files", agentdesk.RoleAgent)
	// serve starts a server process in dir with args and returns its URL.
	serve := func(dir, args string) string {
		return startServeChild(t, url, dir, "--disable-routing --disable-email "+args)
	}

	first, elsewhere := t.TempDir(), t.TempDir()
	base := serve(first, "--blob-dir files --blob-file-min-bytes 1")
	data := bytes.Repeat([]byte("blob-dir "), 1000)
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("file", "notes.txt")
	fw.Write(data) //nolint:errcheck
	mw.Close()
	req, _ := http.NewRequest("POST", base+"/api/v1/attachments", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("upload: %d %s", res.StatusCode, raw)
	}
	var a agentdesk.Attachment
	if err := json.Unmarshal(raw, &a); err != nil {
		t.Fatal(err)
	}
	sum, _ := hex.DecodeString(a.SHA256)
	var path string
	if err := db.QueryRow(ctx, `SELECT path FROM email_blobs WHERE account_id = $1 AND sha256 = $2`, acct.ID, sum).Scan(&path); err != nil {
		t.Fatal(err)
	}
	// t.TempDir may sit under a symlink; the server sees the real path.
	realFirst, _ := filepath.EvalSymlinks(first)
	if want := filepath.Join(realFirst, "files", fmt.Sprint(acct.ID), a.SHA256[:2], a.SHA256); path != want && path != filepath.Join(first, "files", fmt.Sprint(acct.ID), a.SHA256[:2], a.SHA256) {
		t.Fatalf("stored path %q, want %q", path, want)
	}

	other := serve(elsewhere, "")
	req, _ = http.NewRequest("GET", other+a.URL, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !bytes.Equal(got, data) {
		t.Fatalf("download from a server started elsewhere: %d %q", res.StatusCode, got)
	}
}
